"""The whole program: providers, component tree, outputs, guards, and config errors stopping it
before anything is registered."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from harness import (
    DELETE,
    SECRET_KEYS,
    RecordingMonitor,
    Run,
    run_function,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.config import load_config
from pangeo_binder.gcp.stack import GcpStack
from pangeo_binder.outputs import CloudOutputs
from test_config import CASES, case_config

ERROR_CASES = [case for case in CASES if case.values[0]["errors"]]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_cloud_resource_uses_the_explicit_provider(
    stack: str, staging: Run, prod: Run
) -> None:
    run = {"staging": staging, "prod": prod}[stack]
    provider = run.one("pulumi:providers:gcp", "gcp-provider")
    assert provider.inputs["project"] == f"pangeo-binder-{stack}"
    assert provider.inputs["region"] == "us-central1"
    gcp_resources = [r for r in run.custom() if r.type.startswith("gcp:")]
    assert gcp_resources
    for resource in gcp_resources:
        assert resource.provider_urn == provider.urn, resource.name


def test_resources_hang_off_the_component_tree(staging: Run) -> None:
    roots = [r for r in staging.registrations if r.parent.split("::")[2] == "pulumi:pulumi:Stack"]
    assert sorted(r.name for r in roots) == [
        "aws",
        "aws-hub",
        "aws-public-binder",
        "aws-support",
        "gcp",
        "gcp-hub",
        "gcp-public-binder",
        "gcp-support",
    ]
    urns = {r.urn for r in staging.registrations}
    for resource in staging.registrations:
        if resource not in roots:
            assert resource.parent in urns, resource.name
    components = {r.type for r in staging.registrations if not r.custom}
    assert {
        "pangeo-binder:gcp:GkeCluster",
        "pangeo-binder:gcp:HubStorage",
        "pangeo-binder:gcp:ImageRegistry",
        "pangeo-binder:aws:EksCluster",
        "pangeo-binder:aws:HubStorage",
        "pangeo-binder:aws:ImageRegistry",
        "pangeo-binder:hub:Hub",
        "pangeo-binder:support:Support",
    } <= components
    # Ours, and the provider's Helm chart component (its objects are its children).
    assert all(
        t.startswith("pangeo-binder:") or t == "kubernetes:helm.sh/v4:Chart" for t in components
    )


def test_logical_names_are_unique(staging: Run) -> None:
    urns = [r.urn for r in staging.registrations]
    assert len(urns) == len(set(urns))


def test_stack_outputs(staging: Run) -> None:
    assert staging.stack_outputs["gcp"] == {
        "clusterName": "pangeo-binder-staging",
        "scratchBucket": "gs://pangeo-binder-staging-scratch",
        "persistentBucket": "gs://pangeo-binder-staging-persistent",
        "publicBucket": "gs://pangeo-binder-staging-public",
        "registry": "us-central1-docker.pkg.dev",
        "imagePrefix": "us-central1-docker.pkg.dev/pangeo-binder-staging/pangeo-binder-staging-images/",
        "usersIdentity": "pb-staging-users@pangeo-binder-staging.iam.gserviceaccount.com",
        "builderIdentity": "pb-staging-builder@pangeo-binder-staging.iam.gserviceaccount.com",
        "backupIdentity": "pb-staging-backup@pangeo-binder-staging.iam.gserviceaccount.com",
        # The reserved address, known from the first `up` (the mock's documentation-range IP).
        "hubAddress": staging.one("gcp:compute/address:Address", "gcp-hub-address").outputs[
            "address"
        ],
        "hubUrl": "https://gcp.staging.pangeo-binder.example.org",
        # Empty under mocks: the cloud assigns the address when the Service is created.
        "hubLoadBalancer": "",
        # Upstream host -> in-region cache (docs/howto/image-cache.md).
        "imageCache": {
            "docker.io": "us-central1-docker.pkg.dev/pangeo-binder-staging/staging-docker-hub",
            "quay.io": "us-central1-docker.pkg.dev/pangeo-binder-staging/staging-quay",
            "ghcr.io": "us-central1-docker.pkg.dev/pangeo-binder-staging/staging-ghcr",
        },
        # The public Binder (docs/howto/public-binder.md): its own address, URL and builder.
        "publicBinderAddress": staging.one(
            "gcp:compute/address:Address", "gcp-public-address"
        ).outputs["address"],
        "publicBinderUrl": "https://binder.gcp.staging.pangeo-binder.example.org",
        "publicBinderLoadBalancer": "",
        # Its own push account and repository, never the hub's builder (issue 23).
        "publicBuilderIdentity": "pb-staging-public@pangeo-binder-staging.iam.gserviceaccount.com",
        "publicImagePrefix": "us-central1-docker.pkg.dev/pangeo-binder-staging/"
        "pangeo-binder-staging-public-images/",
        "grafanaUrl": "https://gcp.staging.pangeo-binder.example.org/services/grafana/",
    }


def test_staging_idles_at_the_cost_floor(staging: Run) -> None:
    """Nobody logged in: one zonal control plane, two small core nodes (what the core pods
    request: tests/test_core_fit.py) and their disks, the hub's and the public Binder's reserved
    addresses (HTTPS on the first deploy; docs/howto/https.md); no NAT, nothing else that bills
    by the hour."""
    idle = [
        r
        for r in staging.of_type("gcp:container/nodePool:NodePool")
        if r.inputs["autoscaling"]["totalMinNodeCount"] > 0
    ]
    assert [r.name for r in idle] == ["gcp-gke-pool-core"]
    assert idle[0].inputs["autoscaling"]["totalMinNodeCount"] == 2
    assert staging.one("gcp:container/cluster:Cluster").inputs["location"].count("-") == 2  # a zone
    hourly = {
        "gcp:compute/routerNat:RouterNat",
        "gcp:compute/address:Address",
        "gcp:compute/globalAddress:GlobalAddress",
    }
    billed = [r.name for r in staging.registrations if r.type in hourly]
    assert sorted(billed) == ["gcp-hub-address", "gcp-public-address"]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_config_errors_stop_before_any_resource(case: dict[str, Any]) -> None:
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as caught:
        # under the stack whose file the case starts from: names follow the stack
        run_program(case["base"], case_config(case), monitor=monitor)
    for error in case["errors"]:
        assert f"{error['path']}: " in str(caught.value)
    assert monitor.registrations == []


def test_a_config_mistake_is_the_error_pulumi_prints_without_a_trace() -> None:
    """Pulumi's Python runner (pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec)
    logs a `pulumi.RunError` escaping the program as its message alone and exits 1; any other
    exception as a traceback. So the program raises exactly that, detached from the
    ConfigError (`from None`), with every problem naming its key."""
    config = stack_config("staging")
    config["cloud"] = config.pop("clouds")
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as caught:
        run_program("staging", config, monitor=monitor)
    assert caught.value.__suppress_context__ and caught.value.__cause__ is None
    assert str(caught.value) == (
        "1 problem(s) in the pangeo-binder stack config:\n"
        "  - cloud: unknown key 'cloud' (did you mean 'clouds'?); "
        "accepted: environment, clouds, hub, secrets, monitoring, resourceNames"
    )
    assert monitor.registrations == []


def test_missing_dashboards_stop_before_any_resource(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`monitoring` renders the community's dashboards: without their source the program stops
    before registering anything, naming the command; without `monitoring` it does not care."""
    monkeypatch.setenv("PANGEO_BINDER_DASHBOARDS", str(tmp_path))
    monitor = RecordingMonitor()
    with pytest.raises(pulumi.RunError) as caught:
        run_program("staging", monitor=monitor)
    assert "monitoring: the Grafana dashboards are not at" in str(caught.value)
    assert "python -m pangeo_binder.support.dashboards" in str(caught.value)
    assert monitor.registrations == []
    run = run_program("staging", with_value(stack_config("staging"), "monitoring", DELETE))
    assert run.registrations and not run.of_type("pangeo-binder:support:Support")


def test_budget_alerts_when_configured() -> None:
    config = with_value(
        stack_config("staging"),
        "clouds.gcp.budget",
        {
            "monthlyUsd": 250.5,
            "billingAccount": "012345-6789AB-CDEF01",
            "emails": ["ops@example.org", "pi@example.org"],
        },
    )
    run = run_program("staging", config)
    budget = run.one("gcp:billing/budget:Budget").inputs
    assert budget["billingAccount"] == "012345-6789AB-CDEF01"
    assert [t["thresholdPercent"] for t in budget["thresholdRules"]] == [0.5, 0.9, 1.0, 1.2]
    assert budget["amount"] == {
        "specifiedAmount": {"currencyCode": "USD", "units": "250", "nanos": 500000000}
    }
    assert budget["budgetFilter"] == {"projects": ["projects/123456789012"]}
    channels = run.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert sorted(c.inputs["labels"]["email_address"] for c in channels) == [
        "ops@example.org",
        "pi@example.org",
    ]
    assert sorted(budget["allUpdatesRule"]["monitoringNotificationChannels"]) == sorted(
        c.outputs["name"] for c in channels
    )
    # Only the budget's own provider bills its calls to the project (provider inputs reach
    # the engine as strings); the main provider would otherwise need Service Usage Consumer.
    billing = run.one("pulumi:providers:gcp", "gcp-billing-provider")
    assert (billing.inputs["userProjectOverride"], billing.inputs["billingProject"]) == (
        "true",
        "pangeo-binder-staging",
    )
    assert "userProjectOverride" not in run.one("pulumi:providers:gcp", "gcp-provider").inputs
    for resource in [run.one("gcp:billing/budget:Budget"), *channels]:
        assert resource.provider_urn == billing.urn, resource.name
    (lookup,) = [c for c in run.calls if c.token == "gcp:organizations/getProject:getProject"]
    assert lookup.provider.rsplit("::", 1)[0] == billing.urn  # never the default provider


def test_no_budget_by_default(staging: Run) -> None:
    assert staging.of_type("gcp:billing/budget:Budget") == []


def test_gcp_component_outputs_for_the_hub_layer() -> None:
    """The component used directly (as another hub's program would), not through __main__."""
    captured: dict[str, CloudOutputs] = {}

    def program() -> None:
        config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
        assert config.clouds.gcp is not None
        stack = GcpStack(
            "gcp",
            config.clouds.gcp,
            deployment="pangeo-binder-staging",
            environment="staging",
            service_accounts=config.hub.workload_service_accounts(),
        )
        captured["outputs"] = stack.outputs
        pulumi.export("annotations", stack.outputs.service_account_annotations)

    run = run_function(program, "staging")
    assert captured["outputs"].cloud == "gcp"
    assert isinstance(captured["outputs"].kubernetes_provider, k8s.Provider)
    email = "pb-staging-{}@pangeo-binder-staging.iam.gserviceaccount.com"
    assert run.stack_outputs["annotations"] == {
        "users": {"iam.gke.io/gcp-service-account": email.format("users")},
        "builder": {"iam.gke.io/gcp-service-account": email.format("builder")},
        "backup": {"iam.gke.io/gcp-service-account": email.format("backup")},
    }
    # Nothing but the GCP tree: a GCP-only program never touches AWS.
    assert {r.type.split(":")[0] for r in run.registrations} <= {"pangeo-binder", "gcp", "pulumi"}


def test_budget_currency_follows_the_billing_account() -> None:
    config = with_value(
        stack_config("staging"),
        "clouds.gcp.budget",
        {"monthlyUsd": 80, "currency": "EUR", "billingAccount": "012345-6789AB-CDEF01"},
    )
    budget = run_program("staging", config).one("gcp:billing/budget:Budget").inputs
    assert budget["amount"]["specifiedAmount"] == {"currencyCode": "EUR", "units": "80", "nanos": 0}
    assert (
        "monitoringNotificationChannels" not in budget["allUpdatesRule"]
        or budget["allUpdatesRule"]["monitoringNotificationChannels"] == []
    )
