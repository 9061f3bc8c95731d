"""GKE cluster and node pools, as registered by the real program for both stacks."""

from __future__ import annotations

import json

import pytest

from harness import Run, run_program, stack_config, with_value

CLUSTER = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
USER_TAINT = {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NO_SCHEDULE"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
DASK_TAINT = {"key": "k8s.dask.org/dedicated", "value": "worker", "effect": "NO_SCHEDULE"}


def pools(run: Run) -> dict[str, dict]:
    return {r.name.removeprefix("gcp-gke-pool-"): r.inputs for r in run.of_type(POOL)}


def test_staging_cluster_is_zonal_and_prod_regional(staging: Run, prod: Run) -> None:
    assert staging.one(CLUSTER).inputs["location"] == "us-central1-b"
    assert prod.one(CLUSTER).inputs["location"] == "us-central1"


def test_cluster_hardening(staging: Run) -> None:
    cluster = staging.one(CLUSTER).inputs
    assert cluster["workloadIdentityConfig"] == {
        "workloadPool": "pangeo-binder-staging.svc.id.goog"
    }
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["enableShieldedNodes"] is True
    assert cluster["enableLegacyAbac"] is False
    assert cluster["masterAuth"]["clientCertificateConfig"] == {"issueClientCertificate": False}
    assert cluster["clusterAutoscaling"] == {
        "enabled": False,
        "autoscalingProfile": "OPTIMIZE_UTILIZATION",
    }
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert "nodePools" not in cluster  # pools are separate resources


def test_default_pool_never_uses_default_compute_account(staging: Run) -> None:
    node_config = staging.one(CLUSTER).inputs["nodeConfig"]
    assert (
        node_config["serviceAccount"]
        == "pb-staging-nodes@pangeo-binder-staging.iam.gserviceaccount.com"
    )
    assert node_config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}


def test_release_channel_and_maintenance_window(staging: Run) -> None:
    cluster = staging.one(CLUSTER).inputs
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    window = cluster["maintenancePolicy"]["recurringWindow"]
    assert window == {
        "startTime": "2025-01-04T03:00:00Z",
        "endTime": "2025-01-04T09:00:00Z",
        "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU",
    }


def test_maintenance_exclusions_reach_the_cluster() -> None:
    config = with_value(
        stack_config("staging"),
        "clouds.gcp.maintenance",
        {
            "exclusions": [
                {"name": "exams", "start": "2026-12-01T00:00:00Z", "end": "2026-12-20T00:00:00Z"}
            ]
        },
    )
    cluster = run_program("staging", config).one(CLUSTER).inputs
    assert cluster["maintenancePolicy"]["maintenanceExclusions"] == [
        {
            "exclusionName": "exams",
            "startTime": "2026-12-01T00:00:00Z",
            "endTime": "2026-12-20T00:00:00Z",
            "exclusionOptions": {"scope": "NO_MINOR_OR_NODE_UPGRADES"},
        }
    ]


def test_deletion_protection_and_protect_only_in_prod(staging: Run, prod: Run) -> None:
    assert staging.one(CLUSTER).inputs["deletionProtection"] is False
    assert staging.one(CLUSTER).protect is False
    assert prod.one(CLUSTER).inputs["deletionProtection"] is True
    assert prod.one(CLUSTER).protect is True


def test_cluster_ignores_the_temporary_default_pool(staging: Run) -> None:
    assert set(staging.one(CLUSTER).ignore_changes) == {"nodeConfig", "initialNodeCount"}


def test_labels_and_taints_per_purpose(staging: Run) -> None:
    p = pools(staging)
    assert p["core"]["nodeConfig"]["labels"] == {
        "hub.jupyter.org/node-purpose": "core",
        "pangeo-binder.io/pool": "core",
    }
    assert p["core"]["nodeConfig"].get("taints", []) == []
    for key in ("user", "highmem", "gpu"):
        assert p[key]["nodeConfig"]["labels"]["hub.jupyter.org/node-purpose"] == "user"
    for key in ("user", "highmem"):
        assert p[key]["nodeConfig"]["taints"] == [USER_TAINT]
    # GKE taints GPU nodes itself only when a GPU pool joins a cluster that already has a
    # non-GPU pool; here every pool is created together, so the taint is declared.
    assert p["gpu"]["nodeConfig"]["taints"] == [USER_TAINT, GPU_TAINT]
    assert p["dask"]["nodeConfig"]["labels"]["k8s.dask.org/node-purpose"] == "worker"
    assert p["dask"]["nodeConfig"]["taints"] == [DASK_TAINT]


def test_gpu_pool_accelerators_and_driver(staging: Run, prod: Run) -> None:
    gpu = pools(staging)["gpu"]["nodeConfig"]
    assert gpu["guestAccelerators"] == [
        {
            "type": "nvidia-tesla-t4",
            "count": 1,
            # the driver paired with the node version, not one that changes on auto-upgrade
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"},
        }
    ]
    prod_gpu = pools(prod)["gpu"]["nodeConfig"]
    assert prod_gpu["guestAccelerators"][0]["type"] == "nvidia-l4"
    assert prod_gpu["taints"] == [USER_TAINT, GPU_TAINT]
    for key in ("core", "user", "highmem", "dask"):
        assert pools(staging)[key]["nodeConfig"].get("guestAccelerators", []) == []


def test_only_dask_pools_are_spot(staging: Run) -> None:
    assert {k: v["nodeConfig"]["spot"] for k, v in pools(staging).items()} == {
        "core": False,
        "user": False,
        "highmem": False,
        "gpu": False,
        "dask": True,
        "public": False,
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_autoscaling_bounds_match_config(stack: str, staging: Run, prod: Run) -> None:
    run = {"staging": staging, "prod": prod}[stack]
    configured = stack_config(stack)["clouds"]["gcp"]["nodePools"]
    for key, inputs in pools(run).items():
        assert inputs["autoscaling"] == {
            "totalMinNodeCount": configured[key].get("minNodes", 1 if key == "core" else 0),
            "totalMaxNodeCount": configured[key]["maxNodes"],
            "locationPolicy": "ANY",
        }, key


def test_every_pool_but_core_scales_to_zero(staging: Run) -> None:
    minimums = {k: v["autoscaling"]["totalMinNodeCount"] for k, v in pools(staging).items()}
    # Two core nodes hold staging's core pods (Pulumi.staging.yaml, tests/test_core_fit.py).
    assert minimums == {"core": 2, "user": 0, "highmem": 0, "gpu": 0, "dask": 0, "public": 0}
    assert {k: v["initialNodeCount"] for k, v in pools(staging).items()} == minimums


def test_node_counts_belong_to_the_autoscaler(staging: Run) -> None:
    for pool in staging.of_type(POOL):
        assert set(pool.ignore_changes) == {"initialNodeCount", "nodeCount"}, pool.name


def test_node_config_hardening(staging: Run) -> None:
    for key, inputs in pools(staging).items():
        config = inputs["nodeConfig"]
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}, key
        assert config["shieldedInstanceConfig"] == {
            "enableSecureBoot": True,
            "enableIntegrityMonitoring": True,
        }
        assert config["diskType"] == "pd-balanced"
        assert (
            config["serviceAccount"]
            == "pb-staging-nodes@pangeo-binder-staging.iam.gserviceaccount.com"
        )
        assert config["gcfsConfig"] == {"enabled": key != "core"}, key
        assert config["imageType"] == "COS_CONTAINERD"


def test_hyperdisk_only_families_get_hyperdisk() -> None:
    config = with_value(
        stack_config("staging"), "clouds.gcp.nodePools.user.machineType", "n4-highmem-4"
    )
    disk = pools(run_program("staging", config))["user"]["nodeConfig"]["diskType"]
    assert disk == "hyperdisk-balanced"


def test_staging_core_pool_is_small(staging: Run) -> None:
    core = pools(staging)["core"]
    assert core["nodeConfig"]["machineType"] == "e2-standard-2"
    assert core["nodeConfig"]["diskSizeGb"] == 30


def test_pools_can_be_replaced_before_removal(staging: Run, prod: Run) -> None:
    for run in (staging, prod):
        for pool in run.of_type(POOL):
            key = pool.name.removeprefix("gcp-gke-pool-")
            assert pool.inputs["namePrefix"] == f"{key}-"
            assert "name" not in pool.inputs  # a fixed name would block create-before-delete
            assert pool.delete_before_replace is False
            assert pool.protect is False  # pools are replaceable, even in prod


def test_changing_one_pool_changes_only_that_pool(staging: Run) -> None:
    changed = run_program(
        "staging",
        with_value(
            stack_config("staging"), "clouds.gcp.nodePools.user.machineType", "n2-highmem-8"
        ),
    )
    assert changed.one(CLUSTER).inputs == staging.one(CLUSTER).inputs
    before, after = pools(staging), pools(changed)
    assert after["user"]["nodeConfig"]["machineType"] == "n2-highmem-8"
    assert {k: v for k, v in after.items() if k != "user"} == {
        k: v for k, v in before.items() if k != "user"
    }


def test_adding_a_pool_renames_nothing(staging: Run) -> None:
    config = with_value(
        stack_config("staging"),
        "clouds.gcp.nodePools.aaa",
        {"purpose": "user", "machineType": "n2-standard-4", "maxNodes": 2},
    )
    names = {r.name for r in run_program("staging", config).of_type(POOL)}
    assert names == {r.name for r in staging.of_type(POOL)} | {"gcp-gke-pool-aaa"}


def test_kubernetes_provider_uses_exec_auth_and_waits_for_pools(staging: Run) -> None:
    provider = staging.one("pulumi:providers:kubernetes", "gcp-gke-k8s")
    kubeconfig = json.loads(provider.inputs["kubeconfig"])
    user = kubeconfig["users"][0]["user"]
    assert set(user) == {"exec"}  # no token, password or client certificate in state
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://203.0.113.10"
    assert {r.urn for r in staging.of_type(POOL)} <= set(provider.dependencies)


def test_network_is_vpc_native(staging: Run) -> None:
    network = staging.one("gcp:compute/network:Network").inputs
    assert network["autoCreateSubnetworks"] is False
    subnet = staging.one("gcp:compute/subnetwork:Subnetwork").inputs
    assert subnet["ipCidrRange"] == "10.0.0.0/20"
    assert subnet["privateIpGoogleAccess"] is True
    assert subnet["secondaryIpRanges"] == [
        {"rangeName": "pods", "ipCidrRange": "10.16.0.0/14"},
        {"rangeName": "services", "ipCidrRange": "10.20.0.0/20"},
    ]


def test_kubeconfig_is_secret_everywhere(staging: Run) -> None:
    assert "kubeconfig" in staging.one("pulumi:providers:kubernetes", "gcp-gke-k8s").secret_inputs
    assert "gcpKubeconfig" in staging.secret_outputs
    assert "gcp" not in staging.secret_outputs  # the rest of the outputs stay readable


def test_zonal_cluster_pools_in_its_zone(staging: Run) -> None:
    for key, inputs in pools(staging).items():
        assert inputs["nodeLocations"] == ["us-central1-b"], key


def test_regional_gpu_pool_only_in_zones_offering_its_gpu(prod: Run) -> None:
    """L4 is offered in us-central1-a, -b and -c but not -f (data/gcp.yaml); GKE would
    otherwise spread the pool over zones it picks and fail where L4 is missing."""
    assert pools(prod)["gpu"]["nodeLocations"] == [
        "us-central1-a",
        "us-central1-b",
        "us-central1-c",
    ]


def test_regional_dask_pool_in_one_zone_others_left_to_gke(prod: Run) -> None:
    p = pools(prod)
    assert p["dask"]["nodeLocations"] == ["us-central1-a"]
    for key in ("core", "user", "highmem"):
        assert "nodeLocations" not in p[key], key


def test_configured_zones_reach_the_pool() -> None:
    config = with_value(stack_config("prod"), "clouds.gcp.nodePools.dask.zones", ["us-central1-f"])
    config = with_value(config, "clouds.gcp.nodePools.gpu.zones", ["us-central1-c"])
    p = pools(run_program("prod", config))
    assert p["dask"]["nodeLocations"] == ["us-central1-f"]
    assert p["gpu"]["nodeLocations"] == ["us-central1-c"]


def test_gpu_dask_pool_defaults_to_a_zone_offering_its_gpu() -> None:
    config = with_value(
        stack_config("prod"),
        "clouds.gcp.nodePools.gdask",
        {
            "purpose": "dask",
            "machineType": "n1-standard-8",
            "maxNodes": 4,
            "gpu": {"type": "nvidia-tesla-p100"},
        },
    )
    # P100 in us-central1: c and f only
    assert pools(run_program("prod", config))["gdask"]["nodeLocations"] == ["us-central1-c"]


def test_control_plane_open_by_default(staging: Run, prod: Run) -> None:
    """GitHub-hosted runners deploy from changing addresses; operators narrow it."""
    for run in (staging, prod):
        networks = run.one(CLUSTER).inputs["masterAuthorizedNetworksConfig"]
        assert networks == {
            "cidrBlocks": [{"cidrBlock": "0.0.0.0/0", "displayName": "controlPlaneAccess 0"}]
        }


def test_control_plane_narrowed_to_configured_ranges() -> None:
    config = with_value(
        stack_config("prod"), "clouds.gcp.controlPlaneAccess", ["192.0.2.0/24", "198.51.100.7/32"]
    )
    networks = run_program("prod", config).one(CLUSTER).inputs["masterAuthorizedNetworksConfig"]
    assert [block["cidrBlock"] for block in networks["cidrBlocks"]] == [
        "192.0.2.0/24",
        "198.51.100.7/32",
    ]
