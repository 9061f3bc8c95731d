"""The cluster layer knows nothing of the hub: no cloud module imports it, and a cloud stack binds
its identities to whatever Kubernetes service accounts its caller names."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import pangeo_binder
from harness import EKS_ISSUER, SECRET_KEYS, Run, run_function, stack_config, with_value
from pangeo_binder.config import load_config
from pangeo_binder.outputs import BackupWriter, KubernetesServiceAccount, WorkloadServiceAccounts

PACKAGE = Path(pangeo_binder.__file__).parent
CLOUD_FOLDERS = ("gcp", "aws")

# Another hub's accounts, in a namespace of its own: nothing of ours (binder, user-sa, binderhub).
OTHER_HUB = WorkloadServiceAccounts(
    users=KubernetesServiceAccount("research", "notebooks"),
    builder=KubernetesServiceAccount("research", "image-builder"),
)


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("cloud", CLOUD_FOLDERS)
def test_no_cloud_module_imports_the_hub(cloud: str) -> None:
    modules = sorted((PACKAGE / cloud).rglob("*.py"))
    assert modules, f"no modules found under {PACKAGE / cloud}"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(path) if m.startswith("pangeo_binder.hub")
        )
        for path in modules
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_scan_sees_an_import_of_the_hub(tmp_path: Path) -> None:
    """The scan above would catch the import it forbids, in any of its forms."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from pangeo_binder.hub import config\nimport pangeo_binder.hub.hub as h\n"
    )
    assert {"pangeo_binder.hub", "pangeo_binder.hub.config", "pangeo_binder.hub.hub"} <= (
        imported_modules(sample)
    )


def stack_run(cloud: str) -> Run:
    """One cloud stack, used directly as another hub's program would, with OTHER_HUB."""

    def program() -> None:
        config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
        if cloud == "gcp":
            from pangeo_binder.gcp.stack import GcpStack as Stack
        else:
            from pangeo_binder.aws.stack import AwsStack as Stack
        Stack(
            cloud,
            getattr(config.clouds, cloud),
            deployment="pangeo-binder-staging",
            environment="staging",
            service_accounts=OTHER_HUB,
        )

    return run_function(program, "staging")


def test_gcp_binds_the_callers_service_accounts() -> None:
    run = stack_run("gcp")
    members = {
        r.name: r.inputs["member"]
        for r in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    }
    pool = "serviceAccount:pangeo-binder-staging.svc.id.goog"
    assert sorted(members.values()) == [
        f"{pool}[research/image-builder]",
        f"{pool}[research/notebooks]",
    ]


def test_aws_trusts_the_callers_service_accounts() -> None:
    run = stack_run("aws")
    issuer = EKS_ISSUER.removeprefix("https://")
    subjects = set()
    for role in run.of_type("aws:iam/role:Role"):
        for statement in json.loads(role.inputs["assumeRolePolicy"])["Statement"]:
            condition = statement.get("Condition", {}).get("StringEquals", {})
            if f"{issuer}:sub" in condition:
                subjects.add(condition[f"{issuer}:sub"])
    # kube-system's own controllers (autoscaler, CNI, EBS CSI) are the cluster's, not a hub's.
    workloads = {s for s in subjects if not s.startswith("system:serviceaccount:kube-system:")}
    assert workloads == {
        "system:serviceaccount:research:notebooks",
        "system:serviceaccount:research:image-builder",
    }


def test_the_hub_passes_its_own_accounts() -> None:
    config = load_config(stack_config("staging"), secret_keys=SECRET_KEYS)
    assert config.hub.workload_service_accounts() == WorkloadServiceAccounts(
        users=KubernetesServiceAccount("binder", "user-sa"),
        builder=KubernetesServiceAccount("binder", "binderhub"),
        backup=BackupWriter(KubernetesServiceAccount("binder", "hub-db-backup"), retention_days=30),
    )
    off = with_value(stack_config("staging"), "hub.backup.enabled", False)
    assert load_config(off, secret_keys=SECRET_KEYS).hub.workload_service_accounts().backup is None


def test_a_deployment_name_too_long_for_google_account_ids_is_refused() -> None:
    from pangeo_binder.gcp.stack import account_ids

    assert account_ids("research-staging") == {
        "nodes": "pb-research-staging-nodes",
        "users": "pb-research-staging-users",
        "builder": "pb-research-staging-builder",
        "backup": "pb-research-staging-backup",
    }
    # 30 characters is IAM's limit: the builder's id is the longest.
    assert account_ids("research-production")["builder"] == "pb-research-production-builder"
    with pytest.raises(ValueError, match="pb-research-production-eu-builder"):
        account_ids("research-production-eu")
