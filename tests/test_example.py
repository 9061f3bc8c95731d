"""examples/research-hub: a second hub built from the public API only, evaluated under the mock
engine with its own stack file, in its own project namespace."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

import pangeo_binder
from conftest import HELM
from harness import ROOT
from pangeo_binder.hub.image_cache import HUB_ENTRY
from pangeo_binder.hub.incluster.image_cache import original_image
from pangeo_binder.testing import Project, RecordingMonitor, Run

EXAMPLES = ROOT / "examples"
EXAMPLE = EXAMPLES / "research-hub"
PROJECT = "research-hub"


def private_imports(path: Path) -> list[str]:
    """Every use of pangeo_binder in `path` that is not a public name of the package: an
    import of a submodule, or a name or attribute not in `pangeo_binder.__all__`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pangeo_binder":
                    aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("pangeo_binder."):
                    found.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pangeo_binder"):
            if node.module != "pangeo_binder":
                found.append(f"from {node.module} import ...")
            found += [
                f"from pangeo_binder import {alias.name}"
                for alias in node.names
                if alias.name not in pangeo_binder.__all__
            ]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in pangeo_binder.__all__
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def example_programs() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.py"))


def test_there_is_an_example_program() -> None:
    assert EXAMPLE / "__main__.py" in example_programs()


@pytest.mark.parametrize("path", example_programs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_import_only_public_names(path: Path) -> None:
    assert private_imports(path) == []


@pytest.mark.parametrize(
    "source",
    [
        "from pangeo_binder.gcp.stack import GcpStack",
        "import pangeo_binder.hub.hub",
        "from pangeo_binder import catalog",
        "import pangeo_binder as pb\npb.gcp",
        "import pangeo_binder\npangeo_binder.config_shared",
    ],
)
def test_a_private_import_is_caught(tmp_path: Path, source: str) -> None:
    sample = tmp_path / "program.py"
    sample.write_text(source + "\n")
    assert private_imports(sample) != []


def test_the_example_is_its_own_pulumi_project() -> None:
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT == ENGINE.name
    assert project["runtime"]["name"] == "python"
    stack = yaml.safe_load((EXAMPLE / "Pulumi.example.yaml").read_text())
    assert {key.split(":")[0] for key in stack["config"]} == {PROJECT}


# The public mock engine, as an adopter's own tests would use it: bound to the example's folder,
# it reads its Pulumi.yaml (the project, so the config namespace) and its stack file.
ENGINE = Project(EXAMPLE)


@pytest.fixture(scope="module")
def example() -> Run:
    return ENGINE.run_program("example")


def test_one_gke_cluster_with_a_core_pool_and_its_two_user_pools(example: Run) -> None:
    assert example.one("gcp:container/cluster:Cluster").inputs["name"] == "research-staging"
    pools = {
        r.name: r.inputs["nodeConfig"]["machineType"]
        for r in example.of_type("gcp:container/nodePool:NodePool")
    }
    assert pools == {
        "gcp-gke-pool-core": "e2-standard-2",
        "gcp-gke-pool-small": "n2-standard-4",
        "gcp-gke-pool-bigmem": "n2-highmem-16",
    }
    assert {r.type.split(":")[0] for r in example.registrations} == {
        "pangeo-binder",
        "pulumi",
        "gcp",
        "kubernetes",
        "random",
    }


def test_its_identities_are_bound_to_its_own_namespace(example: Run) -> None:
    members = sorted(
        r.inputs["member"]
        for r in example.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    )
    pool = "serviceAccount:example-research-hub.svc.id.goog"
    assert members == [
        f"{pool}[research/binderhub]",
        f"{pool}[research/hub-db-backup]",
        f"{pool}[research/user-sa]",
    ]


def test_only_jupyterhub_no_dask_gateway_no_binderhub(example: Run) -> None:
    assert [r.name for r in example.of_type(HELM)] == ["hub-jupyterhub"]
    values = example.one(HELM, "hub-jupyterhub").inputs["values"]
    assert values["hub"]["services"] == {}
    # The image rewrite's source (shared with Dask workers, so its text names them) aside,
    # nothing mentions Dask: no gateway service, scope, environment or route.
    extra = {k: v for k, v in values["hub"]["extraConfig"].items() if k != HUB_ENTRY}
    assert (
        "dask" not in json.dumps({**values, "hub": {**values["hub"], "extraConfig": extra}}).lower()
    )


def test_its_own_organization_and_image_menu(example: Run) -> None:
    values = example.one(HELM, "hub-jupyterhub").inputs["values"]
    github = values["hub"]["config"]["GitHubOAuthenticator"]
    assert github["allowed_organizations"] == ["example-research-lab"]
    assert github["oauth_callback_url"] == "https://hub.research.example.org/hub/oauth_callback"
    profiles = values["singleuser"]["profileList"]
    assert [p["display_name"].split(":")[0] for p in profiles]  # one profile per user pool
    choices = profiles[0]["profile_options"]["image"]["choices"]
    # Through the in-region cache, by their upstream names (docs/howto/image-cache.md).
    cache = values["custom"]["imageCache"]
    assert {
        original_image(c["kubespawner_override"]["image"], cache) for c in choices.values()
    } == {
        "quay.io/jupyter/scipy-notebook:2024-12-23",
        "quay.io/jupyter/r-notebook:2024-12-23",
    }
    image = values["singleuser"]["image"]
    assert original_image(f"{image['name']}:{image['tag']}", cache) == (
        "quay.io/jupyter/scipy-notebook:2024-12-23"
    )


def test_its_outputs(example: Run) -> None:
    outputs = example.stack_outputs
    assert outputs["hubUrl"] == "https://hub.research.example.org"
    assert outputs["scratchBucket"] == "gs://example-research-hub-research-staging-scratch"
    assert "kubeconfig" in example.secret_outputs


def test_a_config_mistake_stops_it_before_anything_is_registered() -> None:
    config = ENGINE.stack_config("example")
    config["clouds"]["gcp"]["nodePools"]["small"]["maxNodes"] = -1
    config["hub"]["allowedOrganizations"] = []
    monitor = RecordingMonitor()
    with pytest.raises(Exception, match="2 problem") as error:
        ENGINE.run_program("example", config, monitor)
    assert "clouds.gcp.nodePools.small.maxNodes" in str(error.value)
    assert "hub.allowedOrganizations" in str(error.value)
    assert monitor.registrations == []


FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def test_the_adopt_page_shows_the_example_as_it_is() -> None:
    """docs/howto/adopt.md quotes the example's files whole; each quote must be the file."""
    page = (ROOT / "docs" / "howto" / "adopt.md").read_text()
    quoted = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(page)}
    assert set(quoted) == {
        "examples/research-hub/__main__.py",
        "examples/research-hub/Pulumi.example.yaml",
    }
    for path, body in quoted.items():
        assert body == (ROOT / path).read_text().rstrip(), f"paste {path} into adopt.md again"
