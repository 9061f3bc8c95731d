"""The config model on its own: every case in tests/config_cases/*.yaml, good and bad."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import DELETE, SECRET_KEYS, stack_config, with_value
from pangeo_binder import catalog
from pangeo_binder.config import ConfigError, StackConfig, load_config

CASES_DIR = Path(__file__).parent / "config_cases"


def load_cases() -> list[Any]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


CASES = load_cases()


def case_config(case: dict[str, Any]) -> dict[str, Any]:
    config = stack_config(case["base"])
    for path, value in (case.get("set") or {}).items():
        config = with_value(config, path, DELETE if value is None else value)
    return config


def test_cases_were_found() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_config_case(case: dict[str, Any]) -> None:
    config = case_config(case)
    expected = case["errors"]
    if not expected:
        assert isinstance(load_config(config, secret_keys=SECRET_KEYS), StackConfig)
        return
    with pytest.raises(ConfigError) as caught:
        load_config(config, secret_keys=SECRET_KEYS)
    problems = caught.value.problems
    reported = {problem.path: problem.message for problem in problems}
    for error in expected:
        assert error["path"] in reported, f"{error['path']} not reported; got {reported}"
        assert error["contains"] in reported[error["path"]]
    # Exactly the expected problems: a rule firing on a valid key is a bug too.
    assert len(problems) == len(expected), reported
    assert f"{len(problems)} problem(s)" in str(caught.value)


def test_defaults_follow_purpose() -> None:
    config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
    assert config.clouds.gcp is not None
    pools = config.clouds.gcp.node_pools
    # Staging GCP keeps two core nodes (the stack file; tests/test_core_fit.py says why).
    assert pools["core"].min_nodes == 2 and not pools["core"].spot
    assert pools["user"].min_nodes == 0 and pools["user"].disk_size_gb == 100
    assert pools["dask"].spot is True
    assert config.clouds.gcp.storage.delete_after_days == 7
    assert config.hub.namespace == "binder"


def test_core_defaults_to_one_node_and_small_disk() -> None:
    config = stack_config("staging")
    config = with_value(
        config,
        "clouds.gcp.nodePools.core",
        {"purpose": "core", "machineType": "e2-standard-2", "maxNodes": 2},
    )
    pools = load_config(config, secret_keys=SECRET_KEYS).clouds.gcp.node_pools  # type: ignore[union-attr]
    assert (pools["core"].min_nodes, pools["core"].disk_size_gb) == (1, 30)


def test_dask_spot_can_be_turned_off() -> None:
    config = with_value(stack_config("staging"), "clouds.gcp.nodePools.dask.spot", False)
    assert load_config(config, secret_keys=SECRET_KEYS).clouds.gcp.node_pools["dask"].spot is False  # type: ignore[union-attr]


def test_every_gcp_rule_has_a_failing_case() -> None:
    """A rule added without a case (and so without a test of its key path) fails here."""
    cases = yaml.safe_load((CASES_DIR / "gcp.yaml").read_text())
    segments = {part for case in cases for e in case["errors"] for part in e["path"].split(".")}
    for key in (
        "environment",
        "clouds",
        "project",
        "region",
        "zone",
        "nodePools",
        "[key]",
        "purpose",
        "machineType",
        "gpu",
        "count",
        "spot",
        "minNodes",
        "maxNodes",
        "diskSizeGb",
        "monthlyUsd",
        "billingAccount",
        "emails",
        "windowEnd",
        "end",
        "servicesCidr",
        "zones",
        "controlPlaneAccess",
        "hub",
    ):
        assert key in segments, key


def test_secrets_must_be_set_with_secret() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(stack_config("staging"), secret_keys=())
    assert [p.path for p in error.value.problems] == ["secrets"]
    assert "was not set with --secret: run pulumi config rm secrets" in str(error.value)


def test_only_secrets_holds_secret_values() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(stack_config("staging"), secret_keys=("secrets", "hub"))
    assert [p.path for p in error.value.problems] == ["hub"]
    assert "is set as a secret, but only `secrets` holds secret values" in str(error.value)
    assert "run pulumi config rm hub, then set it in plain text" in str(error.value)


def test_a_typo_of_clouds_is_one_unknown_key_naming_clouds() -> None:
    """`cloud:` for `clouds:` is one mistake: reported as the unknown key with the key it
    meant, not also as `clouds` missing."""
    config = stack_config("staging")
    config["cloud"] = config.pop("clouds")
    with pytest.raises(ConfigError) as error:
        load_config(config, secret_keys=SECRET_KEYS)
    assert [str(p) for p in error.value.problems] == [
        "cloud: unknown key 'cloud' (did you mean 'clouds'?); "
        "accepted: environment, clouds, hub, secrets, monitoring, resourceNames"
    ]


@pytest.mark.parametrize("secret_keys", [("secrets", "secrets.gcp.githubClientSecret"), ()])
def test_a_secret_set_without_path_gets_one_message_naming_config_rm(
    secret_keys: tuple[str, ...],
) -> None:
    """`pulumi config set --secret secrets.gcp.githubClientSecret V` (no --path) stores one
    key with dots in its name: one message, the `rm` for that key, then the right command;
    nothing that says to set it in plain text."""
    config = stack_config("staging")
    del config["secrets"]["gcp"]
    config["secrets.gcp.githubClientSecret"] = "x"
    with pytest.raises(ConfigError) as error:
        load_config(config, secret_keys=secret_keys or ("secrets",))
    gcp = [p for p in error.value.problems if p.path == "secrets.gcp.githubClientSecret"]
    assert len(gcp) == 1, error.value.problems
    assert gcp[0].message == (
        "was set without --path, so Pulumi stored one key named "
        "'secrets.gcp.githubClientSecret': run pulumi config rm "
        "'secrets.gcp.githubClientSecret', then pulumi config set --secret --path "
        "'secrets.gcp.githubClientSecret' VALUE"
    )
    assert "plain text" not in str(error.value)


def test_a_malformed_secret_is_never_printed() -> None:
    config = with_value(stack_config("staging"), "secrets.gcp", "ghs_planted_value")
    with pytest.raises(ConfigError) as error:
        load_config(config, secret_keys=SECRET_KEYS)
    assert "ghs_planted_value" not in str(error.value)
    assert "secrets.gcp" in str(error.value)


def test_control_plane_open_by_default_on_both_clouds() -> None:
    config = with_value(stack_config("staging"), "clouds.gcp.controlPlaneAccess", DELETE)
    config = with_value(config, "clouds.aws.controlPlaneAccess", DELETE)
    clouds = load_config(config, secret_keys=SECRET_KEYS).clouds
    assert [str(c) for c in clouds.gcp.control_plane_access] == ["0.0.0.0/0"]  # type: ignore[union-attr]
    assert [str(c) for c in clouds.aws.control_plane_access] == ["0.0.0.0/0"]  # type: ignore[union-attr]


def test_gke_authorized_networks_capped_at_fifty() -> None:
    cidrs = [f"192.0.2.{i}/32" for i in range(51)]
    config = with_value(stack_config("prod"), "clouds.gcp.controlPlaneAccess", cidrs)
    with pytest.raises(
        ConfigError, match=r"clouds\.gcp\.controlPlaneAccess: List should have at most 50"
    ):
        load_config(config, secret_keys=SECRET_KEYS)


def test_gpu_zone_table_names_known_gpus_regions_and_zones() -> None:
    """A typo in data/gcp.yaml's gpuZones would silently refuse (or allow) a zone."""
    cat = catalog.gcp()
    assert cat.gpu_zone_suffixes, "gpuZones is empty"
    for gpu, by_region in cat.gpu_zone_suffixes.items():
        assert gpu in cat.gpus, gpu
        for region, suffixes in by_region.items():
            assert region in cat.regions, (gpu, region)
            assert suffixes and set(suffixes) <= set(cat.regions[region]), (gpu, region)
    # What the stack files rely on: T4 in staging's zone, L4 in only three of four zones.
    assert "us-central1-b" in (cat.gpu_zones("nvidia-tesla-t4", "us-central1") or ())
    assert cat.gpu_zones("nvidia-l4", "us-central1") == (
        "us-central1-a",
        "us-central1-b",
        "us-central1-c",
    )
    assert cat.gpu_zones("nvidia-b200", "us-central1") is None  # no data: zones must be listed
