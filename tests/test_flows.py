"""The flow matrix (components/pangeo_binder/data/flows.yaml) judged by network-config-analyzer
over every NetworkPolicy the program registers and its charts render, with the rendered pods
and the ones KubeSpawner, the gateway and BinderHub make at run time: both stacks, both clouds
(tests/flow_analysis.py says how). Every needed flow is permitted, every forbidden one is
forbidden; a deleted rule and an added path are both caught. Without NCA's environment
(`make nca-tools`) these skip, or fail under CI=true."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from flow_analysis import Cluster, Verdict, cluster_of, judge, require_nca
from harness import Run, run_program, stack_config, with_value
from pangeo_binder import flows
from pangeo_binder.charts import (
    BINDERHUB_SERVICE,
    DASK_GATEWAY,
    GRAFANA,
    JUPYTERHUB,
    PROMETHEUS,
    chart_dir,
)
from pangeo_binder.flows import FlowsError, Matrix

# Both stack files, and staging with the public Binder's Dask gateway on (off in both files).
STACKS = ("staging", "prod", "staging+public-dask")
CASES = [(stack, cloud) for stack in STACKS for cloud in ("gcp", "aws")]
IDS = [f"{stack}-{cloud}" for stack, cloud in CASES]


def public_dask_config() -> dict[str, Any]:
    config = stack_config("staging")
    for cloud in ("gcp", "aws"):
        config = with_value(config, f"clouds.{cloud}.publicBinder.dask", {"enabled": True})
    return config


@pytest.fixture(scope="session")
def matrix() -> Matrix:
    return flows.load()


@pytest.fixture(scope="session")
def clusters(
    chart_files: None,
    staging: Run,
    prod: Run,
    matrix: Matrix,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Cluster]:
    runs = {
        "staging": staging,
        "prod": prod,
        "staging+public-dask": run_program("staging", public_dask_config()),
    }
    root = tmp_path_factory.mktemp("flow-clusters")
    return {
        f"{stack}-{cloud}": cluster_of(runs[stack], stack, cloud, matrix, root / f"{stack}-{cloud}")
        for stack, cloud in CASES
    }


@pytest.fixture(scope="session")
def verdicts(
    clusters: dict[str, Cluster], matrix: Matrix, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Verdict]]:
    """One NCA run per stack and cloud over the whole matrix."""
    nca = require_nca()
    root = tmp_path_factory.mktemp("nca")
    return {
        case: judge(cluster, matrix.flows, root / case, nca) for case, cluster in clusters.items()
    }


def failures(found: list[Verdict], kind: str) -> str:
    return "\n".join(
        f"{v.flow.name}\n  why: {v.flow.why}\n  upstream: {v.flow.upstream}\n"
        + "\n".join("    " + line for line in v.text.splitlines())
        for v in found
        if v.flow.kind == kind and not v.holds
    )


@pytest.mark.parametrize("case", IDS)
def test_every_role_of_a_judged_flow_stands_for_pods(
    case: str, clusters: dict[str, Cluster], matrix: Matrix
) -> None:
    """A selector that matches nothing would make NCA's verdicts vacuous: every role a judged
    flow names selects at least one pod here (each chart role exactly its one workload)."""
    cluster = clusters[case]
    for flow in matrix.flows:
        if not cluster.applies(flow):
            continue
        for role in (flow.source, flow.destination):
            if role.is_address:
                continue
            pods = cluster.pods_of(role)
            assert pods, f"{case}: role {role.name} selects no pod (flow {flow.name})"
            if role.made_by in ("chart", "program", "kubespawner"):
                assert len(pods) == 1, (case, role.name, [p["metadata"]["name"] for p in pods])


@pytest.mark.parametrize("case", IDS)
def test_every_needed_flow_is_permitted(case: str, verdicts: dict[str, list[Verdict]]) -> None:
    problems = failures(verdicts[case], "needed")
    assert not problems, f"{case}: needed flows the policies refuse:\n{problems}"


@pytest.mark.parametrize("case", IDS)
def test_every_forbidden_flow_is_forbidden(case: str, verdicts: dict[str, list[Verdict]]) -> None:
    problems = failures(verdicts[case], "forbidden")
    assert not problems, f"{case}: forbidden flows the policies allow:\n{problems}"


def test_the_matrix_is_judged_on_both_stacks_and_clouds(
    verdicts: dict[str, list[Verdict]], clusters: dict[str, Cluster], matrix: Matrix
) -> None:
    """Staging has the public Binder on both clouds, prod none: its flows are judged in
    staging only, and the public gateway's only where it is on; the metadata flows only on
    their cloud; everything else everywhere."""
    public = {f.name for f in matrix.flows if "public" in f.namespaces()}
    public_dask = {
        f.name for f in matrix.flows if ("public", "public-dask-gateway") in f.releases()
    }
    assert public_dask and public_dask < public
    for case, found in verdicts.items():
        judged = {v.flow.name for v in found}
        cluster = clusters[case]
        assert ("public" in cluster.namespaces) == case.startswith("staging"), case
        left_out = set() if "public-dask" in case else public_dask
        if case.startswith("prod"):
            left_out = public
        expected = {f.name for f in matrix.flows if cluster.cloud in f.clouds} - left_out
        assert judged == expected, case
        # The policies NCA read: the program's and the charts', namespaces of the hub included.
        origins = set(cluster.origins.values())
        assert any(o.startswith("program ") for o in origins)
        assert any(o.startswith("chart ") for o in origins)
    assert len(verdicts["staging-gcp"]) > len(verdicts["prod-gcp"])


def test_run_time_pods_are_made_by_the_upstream_code(clusters: dict[str, Cluster]) -> None:
    """User servers are KubeSpawner's manifests (its managed-by label, z2jh's release label,
    the notebook port by name); Dask pods are the gateway controller's (its cluster label,
    the scheduler's API port 8788)."""
    cluster = clusters["staging-gcp"]
    pods = {p["metadata"]["name"]: p for p in cluster.workloads if p["kind"] == "Pod"}
    alice = pods["jupyter-alice"]["metadata"]["labels"]
    assert alice["app.kubernetes.io/managed-by"] == "kubespawner"
    assert alice["hub.jupyter.org/username"] == "alice" and alice["release"] == "jupyterhub"
    (container,) = pods["jupyter-alice"]["spec"]["containers"]
    assert {"name": "notebook-port", "containerPort": 8888} in container["ports"]
    scheduler = pods["dask-scheduler-flows"]
    assert scheduler["metadata"]["labels"]["gateway.dask.org/cluster"] == "flows"
    ports = scheduler["spec"]["containers"][0]["ports"]
    assert {"name": "api", "containerPort": 8788} in ports


def only(matrix: Matrix, *names: str) -> list[flows.Flow]:
    chosen = [f for f in matrix.flows if f.name in names]
    assert len(chosen) == len(names), names
    return chosen


def test_a_deleted_rule_fails_a_needed_flow(
    clusters: dict[str, Cluster], matrix: Matrix, tmp_path: Path
) -> None:
    """Without the egress rule of z2jh's proxy policy that opens the hub's port, NCA finds
    proxy -> hub refused; the flows the deletion leaves alone still pass."""
    nca = require_nca()
    cluster = clusters["staging-gcp"]
    policies = copy.deepcopy(cluster.policies)
    (proxy,) = [
        p
        for p in policies
        if (p["metadata"]["namespace"], p["metadata"]["name"]) == ("binder", "proxy")
    ]
    before = len(proxy["spec"]["egress"])
    proxy["spec"]["egress"] = [
        rule
        for rule in proxy["spec"]["egress"]
        if [port.get("port") for port in rule.get("ports", [])] != [8081]
    ]
    assert len(proxy["spec"]["egress"]) == before - 1
    chosen = only(matrix, "needed: proxy -> hub 8081/TCP", "needed: proxy -> user-server 8888/TCP")
    found = {v.flow.name: v.holds for v in judge(cluster, chosen, tmp_path, nca, policies)}
    assert found == {
        "needed: proxy -> hub 8081/TCP": False,
        "needed: proxy -> user-server 8888/TCP": True,
    }


def test_an_added_path_to_a_forbidden_destination_fails(
    clusters: dict[str, Cluster], matrix: Matrix, tmp_path: Path
) -> None:
    """A policy that lets user servers reach each other (egress and ingress, as it would
    take) makes NCA find alice -> bob allowed."""
    nca = require_nca()
    cluster = clusters["staging-gcp"]
    servers = {"podSelector": {"matchLabels": {"component": "singleuser-server"}}}
    added: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "servers-talk", "namespace": "binder"},
        "spec": {
            **servers,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [servers]}],
            "egress": [{"to": [servers]}],
        },
    }
    chosen = only(matrix, "forbidden: user-server -> other-user-server any port/TCP+UDP")
    (kept,) = judge(cluster, chosen, tmp_path / "kept", nca)
    assert kept.holds
    (opened,) = judge(cluster, chosen, tmp_path / "opened", nca, [*cluster.policies, added])
    assert not opened.holds
    assert "jupyter-bob" in opened.text


def test_port_ranges_reach_the_analyzer(
    clusters: dict[str, Cluster], matrix: Matrix, tmp_path: Path
) -> None:
    """A forbidden range is judged over all its ports (NCA reads `endPort`): user servers may
    call the hub on 8081 only, so 8000-8100 is found open and 8082-65535 closed."""
    nca = require_nca()
    cluster = clusters["staging-gcp"]
    (base,) = only(matrix, "forbidden: user-server -> hub 1-8080,8082-65535/TCP+UDP")
    wide = dataclasses.replace(base, ports=((8000, 8100),), protocols=("TCP",))
    high = dataclasses.replace(base, ports=((8082, 65535),), protocols=("TCP",))
    wide_verdict, high_verdict = judge(cluster, [wide, high], tmp_path, nca)
    assert not wide_verdict.holds and "8081" in wide_verdict.text
    assert high_verdict.holds


# --- the loader ---------------------------------------------------------------------------------


def data() -> dict[str, Any]:
    path = Path(flows.__file__).parent / "data" / "flows.yaml"
    return yaml.safe_load(path.read_text())


def edited(change: Any) -> dict[str, Any]:
    content = data()
    change(content)
    return content


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["needed"][0].update({"to": "hubb"}),
            "needed[0] (proxy -> hubb).to: unknown role 'hubb'",
        ),
        (
            lambda d: d["needed"][0].update({"ports": [80000]}),
            "needed[0] (proxy -> hub).ports: 80000 is outside 1-65535",
        ),
        (
            lambda d: d["forbidden"][1].update({"ports": ["8082-x"]}),
            "forbidden[1] (user-server -> hub).ports: '8082-x' is not a port or a range",
        ),
        (
            lambda d: d["needed"][1].pop("why"),
            "needed[1] (hub -> proxy).why: required, a non-empty string",
        ),
        (
            lambda d: d["needed"][2].update({"protocol": "SCTP"}),
            "needed[2] (['proxy', 'hub'] -> user-server).protocol:",
        ),
        (
            lambda d: d["roles"]["hub"].update({"namespace": "hubs"}),
            "roles.hub.namespace: one of",
        ),
        (lambda d: d["roles"]["proxy"].update({"labels": {}}), "roles.proxy: unknown keys"),
        (
            lambda d: d["needed"].append(dict(d["needed"][0])),
            "needed: listed twice: ['needed: proxy -> hub 8081/TCP']",
        ),
        (
            lambda d: d["needed"].append({**d["needed"][0], "from": "internet"}),
            "from: internet is an address, not pods",
        ),
    ],
)
def test_a_bad_entry_is_named(change: Any, message: str) -> None:
    with pytest.raises(FlowsError) as error:
        flows.parse(edited(change))
    assert message in str(error.value)


def test_every_flow_says_why_and_where_upstream(matrix: Matrix) -> None:
    for flow in matrix.flows:
        assert len(flow.why) > 20 and len(flow.upstream) > 10, flow.name
    used = flows.used_roles(matrix.flows)
    assert used == set(matrix.roles), set(matrix.roles) - used


def cited_files(text: str) -> list[tuple[str, str]]:
    """(prefix, path) of each citation in `text` whose source is on this machine: a pinned
    chart's file, an installed package's module at its locked version, or ours."""
    found = []
    for part in text.split(";"):
        words = part.split()
        for prefix_length in (3, 2, 1):
            prefix = " ".join(words[:prefix_length])
            if prefix in UPSTREAM_ROOTS and len(words) > prefix_length:
                found.append((prefix, words[prefix_length].rstrip(",")))
                break
        else:
            if words and words[0].startswith("pangeo_binder/"):
                found.append(("pangeo_binder", words[0].removeprefix("pangeo_binder/")))
    return found


def _package(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0])


UPSTREAM_ROOTS: dict[str, Any] = {
    "z2jh 4.4.0": lambda: chart_dir(JUPYTERHUB),
    "dask-gateway 2026.3.0": lambda: chart_dir(DASK_GATEWAY),
    "binderhub-service": lambda: chart_dir(BINDERHUB_SERVICE),
    "binderhub-service 0.1.0-0.dev.git.336.hca79dc0": lambda: chart_dir(BINDERHUB_SERVICE),
    "grafana chart 11.6.1": lambda: chart_dir(GRAFANA),
    "prometheus chart 29.27.0": lambda: chart_dir(PROMETHEUS),
    "dask-gateway-server 2026.3.0": lambda: _package("dask_gateway_server"),
    "kubespawner 7.0.0": lambda: _package("kubespawner").parent,
    "JupyterHub 5.5.0": lambda: _package("jupyterhub").parent,
    "pangeo_binder": lambda: _package("pangeo_binder"),
}


@pytest.mark.usefixtures("chart_files")
def test_the_cited_upstream_files_exist_at_our_pins(matrix: Matrix) -> None:
    """Every citation of a pinned chart's file, an installed package's module or ours names a
    file that is there (the pinned charts' sources; the packages at their locked versions)."""
    import importlib.metadata

    assert importlib.metadata.version("jupyterhub-kubespawner") == "7.0.0"
    assert importlib.metadata.version("dask-gateway-server") == "2026.3.0"
    assert importlib.metadata.version("jupyterhub") == "5.5.0"
    texts = [f.upstream for f in matrix.flows] + [r.upstream for r in matrix.roles.values()]
    checked = 0
    for text in texts:
        for prefix, path in cited_files(text):
            root = UPSTREAM_ROOTS[prefix]()
            relative = path.removeprefix("jupyterhub/") if prefix == "z2jh 4.4.0" else path
            assert (root / relative).is_file(), f"{prefix} {path} (in {text!r})"
            checked += 1
    assert checked > 60
