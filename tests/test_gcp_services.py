"""The Google APIs the stack enables itself, and every GCP resource waiting for them."""

from __future__ import annotations

from harness import Registration, Run, run_program, stack_config, with_value

SERVICE = "gcp:projects/service:Service"
CORE_APIS = {
    "compute.googleapis.com",
    "container.googleapis.com",
    "containerfilesystem.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "storage.googleapis.com",
    "artifactregistry.googleapis.com",
}
BUDGET_APIS = {"billingbudgets.googleapis.com", "monitoring.googleapis.com"}
BUDGET = {"monthlyUsd": 300, "billingAccount": "012345-6789AB-CDEF01", "emails": ["a@example.org"]}


def with_budget() -> Run:
    return run_program("staging", with_value(stack_config("staging"), "clouds.gcp.budget", BUDGET))


def under_gcp_stack(run: Run, resource: Registration) -> bool:
    urns = {r.urn for r in run.registrations}
    while resource.parent in urns:
        resource = run.by_urn(resource.parent)
        if resource.type == "pangeo-binder:gcp:Stack":
            return True
    return False


def test_apis_enabled_never_disabled(staging: Run, prod: Run) -> None:
    for run, project in ((staging, "pangeo-binder-staging"), (prod, "pangeo-binder-prod")):
        services = run.of_type(SERVICE)
        assert {s.inputs["service"] for s in services} == CORE_APIS
        for service in services:
            assert service.inputs["project"] == project
            # Disabling an API on destroy would break other stacks and people in the project.
            assert service.inputs["disableOnDestroy"] is False
            assert service.inputs["disableDependentServices"] is False
            assert "gcp-provider" in service.provider


def test_budget_apis_only_with_a_budget(staging: Run) -> None:
    assert not BUDGET_APIS & {s.inputs["service"] for s in staging.of_type(SERVICE)}
    run = with_budget()
    assert {s.inputs["service"] for s in run.of_type(SERVICE)} == CORE_APIS | BUDGET_APIS


def test_every_gcp_resource_waits_for_the_apis(staging: Run, prod: Run) -> None:
    """Node pools, buckets, the registry, identities and the Kubernetes provider alike: a
    fresh project's first `pulumi up` must not call an API before it is enabled."""
    for run in (staging, prod, with_budget()):
        apis = {s.urn for s in run.of_type(SERVICE)}
        waiting = [
            r
            for r in run.custom()
            if under_gcp_stack(run, r)
            and r.type != SERVICE
            and r.name != "gcp-provider"  # the APIs are enabled through it
        ]
        assert {"gcp:container/nodePool:NodePool", "pulumi:providers:kubernetes"} <= {
            r.type for r in waiting
        }
        assert len(waiting) > 20
        for resource in waiting:
            assert apis <= set(resource.dependencies), (resource.type, resource.name)
