"""The offline plan: tree, redaction, cost arithmetic, --compare, unpriced items, Markdown,
and where it runs (a project without `tests/`, an installed package, an older ref).

The program runs in a subprocess (as `python -m pangeo_binder.plan` runs it), so each
evaluation takes seconds: the staging one is shared by the module.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from markdown_it import MarkdownIt

from harness import ROOT, STACKS, RecordingMonitor, copy_checkout, run_function
from pangeo_binder.plan import __main__ as cli
from pangeo_binder.plan import build, cost, runtime
from pangeo_binder.plan import docs as plan_docs
from pangeo_binder.plan.cost import Prices
from pangeo_binder.plan.render import RENDERERS

HOURS = 730
# Figures for the tests alone: round numbers, so the arithmetic is checked, not the data.
TEST_PRICES: dict[str, Any] = {
    "hoursPerMonth": HOURS,
    "sources": {"test": {"url": "https://example.org/prices", "read": "2026-11-26"}},
    "gcp": {
        "all-regions": {
            "controlPlane": {"usdPerHour": 0.1, "source": "test"},
            "zonalFreeTierCredit": {"usdPerMonth": 74.4, "source": "test"},
            "loadBalancer": {"usdPerHour": 0.025, "source": "test"},
            "publicIpv4": {"usdPerHour": 0.005, "source": "test"},
            "publicIpv4Spot": {"usdPerHour": 0.0025, "source": "test"},
        },
        "us-central1": {
            "machines": {
                "e2-standard-2": {"onDemand": 0.07, "spot": 0.02, "source": "test"},
                "e2-standard-4": {"onDemand": 0.14, "spot": 0.05, "source": "test"},
                "n2-highmem-4": {"onDemand": 0.26, "spot": 0.06, "source": "test"},
                "n2-highmem-16": {"onDemand": 1.05, "spot": 0.25, "source": "test"},
                "n2-highmem-32": {"onDemand": 2.1, "spot": 0.5, "source": "test"},
                "n1-standard-8": {"onDemand": 0.38, "spot": 0.08, "source": "test"},
            },
            "gpus": {"nvidia-tesla-t4": {"onDemand": 0.35, "spot": 0.11, "source": "test"}},
            "disks": {"pd-balanced": {"usdPerGbMonth": 0.1, "source": "test"}},
            "staticIpv4": {"usdPerHour": 0.01, "source": "test"},
        },
    },
    "aws": {
        "all-regions": {
            "controlPlane": {"usdPerHour": 0.1, "source": "test"},
            "publicIpv4": {"usdPerHour": 0.005, "source": "test"},
            "kmsKey": {"usdPerMonth": 1.0, "source": "test"},
            "loadBalancer": {"usdPerHour": 0.025, "source": "test"},
            "networkLoadBalancer": {"usdPerHour": 0.0225, "source": "test"},
            "networkLoadBalancerNlcu": {"usdPerHour": 0.006, "source": "test"},
        },
        "us-west-2": {
            "machines": {
                "t3a.large": {"onDemand": 0.075, "spot": 0.03, "source": "test"},
                "r5.xlarge": {"onDemand": 0.25, "spot": 0.07, "source": "test"},
                "r6i.8xlarge": {"onDemand": 2.0, "spot": 0.6, "source": "test"},
                "g4dn.xlarge": {"onDemand": 0.53, "spot": 0.2, "source": "test"},
                "r5.4xlarge": {"onDemand": 1.0, "spot": 0.3, "source": "test"},
            },
            "disks": {
                "gp3": {"usdPerGbMonth": 0.08, "source": "test"},
                "gp3-throughput": {"usdPerMonth": 0.04, "source": "test"},
            },
            "natGateway": {"usdPerHour": 0.045, "source": "test"},
        },
    },
}


@pytest.fixture(scope="module")
def prices() -> Prices:
    return Prices(copy.deepcopy(TEST_PRICES))


@pytest.fixture(scope="module")
def staging_eval() -> dict[str, Any]:
    return build.evaluate(ROOT, "staging", stacks=STACKS)


@pytest.fixture(scope="module")
def staging_plan(staging_eval: dict[str, Any], prices: Prices) -> dict[str, Any]:
    return build.plan(staging_eval, prices)


def lines(plan: dict[str, Any], cloud: str, scope: str) -> list[dict[str, Any]]:
    return [line for line in plan["clouds"][cloud]["cost"]["lines"] if line["scope"] == scope]


def test_tree_groups_every_resource_under_its_cloud_and_component(
    staging_eval: dict[str, Any], staging_plan: dict[str, Any]
) -> None:
    gcp, aws = (
        [{k: r[k] for k in ("type", "name", "parent")} for r in block["resources"]]
        for block in (staging_plan["clouds"]["gcp"], staging_plan["clouds"]["aws"])
    )
    assert sorted(staging_plan["clouds"]) == ["aws", "gcp"]
    assert len(gcp) + len(aws) == len(staging_eval["records"])
    assert {
        "type": "gcp:container/nodePool:NodePool",
        "name": "gcp-gke-pool-gpu",
        "parent": "gcp-gke",
    } in gcp
    assert {"type": "pangeo-binder:gcp:GkeCluster", "name": "gcp-gke", "parent": "gcp"} in gcp
    assert {
        "type": "aws:eks/nodeGroup:NodeGroup",
        "name": "aws-eks-pool-gpu-group",
        "parent": "aws-eks-pool-gpu",
    } in aws
    assert not [r for r in gcp if r["type"].startswith("aws:")]
    assert not [r for r in aws if r["type"].startswith("gcp:")]
    for resources in (gcp, aws):  # every parent is a component of the same cloud
        names = {r["name"] for r in resources}
        assert {r["parent"] for r in resources} - names == {""}
    text = RENDERERS["text"](staging_plan)
    assert "\n      gcp-gke-pool-gpu  (gcp:container/nodePool:NodePool)" in text


def test_line_items_times_730_hours_make_the_totals(staging_plan: dict[str, Any]) -> None:
    for cloud, block in staging_plan["clouds"].items():
        cost = block["cost"]
        for scope in ("idle", "ceiling"):
            items = lines(staging_plan, cloud, scope)
            assert items, (cloud, scope)
            for line in items:
                assert abs(line["quantity"] * line["unitUsd"] * HOURS - line["monthlyUsd"]) <= 0.005
                assert line["source"] == "https://example.org/prices"
            assert cost[f"{scope}MonthlyUsd"] == round(sum(x["monthlyUsd"] for x in items), 2)
        assert cost["unpriced"] == [], cloud


def test_idle_is_the_minimum_nodes_and_fixed_items(staging_plan: dict[str, Any]) -> None:
    idle = {x["item"]: x for x in lines(staging_plan, "gcp", "idle")}
    balancers = [item for item in idle if item.startswith("load balancer")]
    # the zonal control plane and the free tier credit cancel; core: 2 nodes (Pulumi.staging.yaml,
    # tests/test_core_fit.py), their disks and addresses
    assert set(idle) - set(balancers) == {
        "GKE control plane (zonal) pangeo-binder-staging",
        "GKE free tier credit (one zonal cluster per billing account)",
        "pool core: e2-standard-2 (on-demand)",
        "pool core: boot disk 30 GB pd-balanced",
        "pool core: external IPv4 address per node",
        "static IPv4 gcp-hub-address",  # the hub's reserved address (docs/howto/https.md)
        "static IPv4 gcp-public-address",  # the public Binder's (docs/howto/public-binder.md)
        "support: Prometheus volume 20Gi pd-balanced",  # monitoring.volumeSizeGb
    }
    expected = 2 * (0.07 * HOURS + 30 * 0.1 + 0.005 * HOURS)  # pools at zero cost nothing idle
    expected += 2 * 0.01 * HOURS
    expected += 20 * 0.1  # Prometheus' volume
    expected += len(balancers) * 0.025 * HOURS
    assert staging_plan["clouds"]["gcp"]["cost"]["idleMonthlyUsd"] == pytest.approx(
        expected, abs=0.02
    )
    aws = {x["item"] for x in lines(staging_plan, "aws", "idle")}
    assert not [item for item in aws if "pool user" in item or "pool dask" in item]
    assert "NAT gateway" not in " ".join(aws)  # staging runs none


def test_ceiling_puts_every_pool_at_max_nodes_spot_priced_as_spot(
    staging_eval: dict[str, Any], staging_plan: dict[str, Any], prices: Prices
) -> None:
    ceiling = {x["item"]: x for x in lines(staging_plan, "gcp", "ceiling")}
    dask = ceiling["pool dask: n2-highmem-16 (spot)"]
    assert (dask["quantity"], dask["unitUsd"]) == (100, 0.25)
    assert ceiling["pool dask: external IPv4 address per node"]["unitUsd"] == 0.0025
    gpu = ceiling["pool gpu: 1 x nvidia-tesla-t4 per node"]
    assert (gpu["quantity"], gpu["unitUsd"]) == (4, 0.35)
    assert ceiling["pool user: n2-highmem-4 (on-demand)"]["quantity"] == 20
    aws = {x["item"]: x for x in lines(staging_plan, "aws", "ceiling")}
    assert aws["pool dask: r5.4xlarge (first of 4 types) (spot)"]["unitUsd"] == 0.3
    assert aws["pool core: boot disk 30 GB gp3"]["unitUsd"] == pytest.approx(30 * 0.08 / HOURS)
    # Parallel pull's 600 MiB/s root volumes: 475 MiB/s above gp3's included 125, per node.
    throughput = aws["pool user: gp3 throughput 475 MiB/s above the included 125"]
    assert throughput["quantity"] == 20
    assert throughput["unitUsd"] == pytest.approx(475 * 0.04 / HOURS)
    assert not [item for item in aws if item.startswith("pool core: gp3 throughput")]

    # the same pool on demand: priced from the resource, so the change shows
    records = copy.deepcopy(staging_eval["records"])
    pool = next(r for r in records if r["name"] == "gcp-gke-pool-dask")
    pool["inputs"]["nodeConfig"]["spot"] = False
    on_demand = build.plan({**staging_eval, "records": records}, prices)
    items = {x["item"]: x for x in lines(on_demand, "gcp", "ceiling")}
    assert items["pool dask: n2-highmem-16 (on-demand)"]["unitUsd"] == 1.05
    difference = (
        on_demand["clouds"]["gcp"]["cost"]["ceilingMonthlyUsd"]
        - staging_plan["clouds"]["gcp"]["cost"]["ceilingMonthlyUsd"]
    )
    assert difference == pytest.approx(100 * ((1.05 - 0.25) + (0.005 - 0.0025)) * HOURS, abs=0.05)


def test_the_public_binder_pool_costs_nothing_idle_and_its_max_nodes_at_most(
    staging_plan: dict[str, Any],
) -> None:
    """The public pool's maxNodes is the ceiling on what anonymous users can cost."""
    for cloud, machine, price in (("gcp", "e2-standard-4", 0.14), ("aws", "r5.xlarge", 0.25)):
        ceiling = {x["item"]: x for x in lines(staging_plan, cloud, "ceiling")}
        public = ceiling[f"pool public: {machine} (on-demand)"]
        assert (public["quantity"], public["unitUsd"]) == (5, price)
        assert public["monthlyUsd"] == pytest.approx(5 * price * HOURS, abs=0.01)
        idle = [x["item"] for x in lines(staging_plan, cloud, "idle")]
        assert not [item for item in idle if item.startswith("pool public:")]
        # Its own load balancer, beside the hub's (an NLB on EKS: hub/proxy.py).
        kind = "network load balancer" if cloud == "aws" else "load balancer"
        assert f"{kind} (jupyterhub release public-jupyterhub)" in idle, idle


def test_unpriced_machines_are_listed_and_warned_by_name(
    staging_eval: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    data = copy.deepcopy(TEST_PRICES)
    del data["gcp"]["us-central1"]["machines"]["n2-highmem-32"]
    del data["aws"]["us-west-2"]["machines"]["g4dn.xlarge"]
    price_file = tmp_path / "prices.yaml"
    price_file.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(build, "evaluate", lambda *_, **__: staging_eval)
    monkeypatch.chdir(ROOT)  # the default project is the current directory
    argv = ["--stack", "staging", "--stacks", str(STACKS), "--format", "json"]
    assert cli.main([*argv, "--prices", str(price_file)]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["clouds"]["gcp"]["cost"]["unpriced"] == [
        "n2-highmem-32 (us-central1, on-demand)"
    ]
    assert document["clouds"]["aws"]["cost"]["unpriced"] == ["g4dn.xlarge (us-west-2, on-demand)"]
    assert "warning: gcp: no price for n2-highmem-32 (us-central1, on-demand)" in captured.err
    assert "warning: aws: no price for g4dn.xlarge (us-west-2, on-demand)" in captured.err
    items = " ".join(x["item"] for x in document["clouds"]["gcp"]["cost"]["lines"])
    assert "n2-highmem-32" not in items  # left out, never priced at zero
    assert "pool highmem: boot disk 100 GB pd-balanced" in items  # what has a price stays


def test_outside_a_pulumi_project_the_error_names_root(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--stack", "staging"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path.resolve()} has no Pulumi.yaml" in error and "--root" in error


def test_json_has_the_shape_other_tools_read(staging_plan: dict[str, Any]) -> None:
    document = json.loads(RENDERERS["json"](staging_plan))
    assert {"stack", "clouds"} <= document.keys() and "delta" not in document
    assert document["stack"] == "staging"
    for block in document["clouds"].values():
        assert {"resources", "cost"} <= block.keys()
        assert all(
            set(r) == {"type", "name", "parent", "inputs", "options"} for r in block["resources"]
        )
        cost = block["cost"]
        assert {"idleMonthlyUsd", "ceilingMonthlyUsd", "lines", "unpriced"} <= cost.keys()
        for line in cost["lines"]:
            assert {"item", "quantity", "unitUsd", "monthlyUsd", "source"} <= line.keys()


def test_markdown_renders_as_tables(staging_plan: dict[str, Any]) -> None:
    html = MarkdownIt("commonmark").enable("table").render(RENDERERS["markdown"](staging_plan))
    assert html.count("<table>") >= 1 + 2 * 3  # totals; per cloud idle, ceiling, resources
    assert "<th>cloud</th>\n<th>idle</th>\n<th>ceiling</th>" in html
    assert "<td>pool core: e2-standard-2 (on-demand)</td>" in html
    # A resource table, unless the comment had to leave it out and says so.
    assert "<td>aws-eks-pool-gpu-group</td>" in html or "aws resources (" in html
    assert "<td>gcp-gke-pool-gpu</td>" in html or "gcp resources (" in html
    assert "<td>aws-eks-pool-gpu-group</td>" in html or "<td>gcp-gke-pool-gpu</td>" in html


def test_markdown_fits_a_pull_request_comment(staging_plan: dict[str, Any]) -> None:
    document = copy.deepcopy(staging_plan)
    huge = {"name": "huge", "chart": "x", "version": "1", "values": {"k": "v" * 100_000}}
    document["clouds"]["gcp"]["releases"].append(huge)
    markdown = RENDERERS["markdown"](document)
    assert len(markdown) < 30_000  # staging and prod share one comment (GitHub: 65,536)
    assert "### Monthly cost" in markdown and "gcp idle line items" in markdown
    left_out = markdown.split("Left out to fit a comment")[1]
    assert "gcp Helm values: huge (x 1)" in left_out


def chart_program() -> None:
    """A cloud component with a hub chart whose values carry planted secrets."""

    class Stack(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("pangeo-binder:gcp:Stack", "gcp")
            k8s.helm.v4.Chart(
                "gcp-hub",
                chart="jupyterhub",
                version="4.4.0",
                values={
                    "proxy": {"secretToken": pulumi.Output.secret("PLANTED-PROXY-TOKEN")},
                    "singleuser": {"extraEnv": {"X": pulumi.Output.secret("PLANTED-NESTED")}},
                    "hub": {
                        "config": {
                            "GitHubOAuthenticator": {
                                "client_secret": "PLANTED-CLIENT-SECRET",
                                "client_id": "Iv1.visible",
                            }
                        }
                    },
                },
                opts=pulumi.ResourceOptions(parent=self),
            )

    Stack()


def test_chart_values_are_shown_with_secrets_redacted(prices: Prices) -> None:
    monitor = runtime.recording_monitor(RecordingMonitor)
    with runtime.watching_secrets() as seen:
        run_function(chart_program, monitor=monitor)
    evaluation = {
        "stack": "test",
        "ciphertexts": [],
        "secretValues": runtime.secret_strings(seen, monitor),
        "records": monitor.records,
    }
    document = build.plan(evaluation, prices)
    for render in RENDERERS.values():
        output = render(document)
        assert "PLANTED" not in output
        assert "Iv1.visible" in output  # the rest of the values is readable
    (release,) = document["clouds"]["gcp"]["releases"]
    assert release["chart"] == "jupyterhub"
    assert release["values"]["proxy"]["secretToken"] == "[secret]"
    assert release["values"]["singleuser"]["extraEnv"]["X"] == "[secret]"
    assert release["values"]["hub"]["config"]["GitHubOAuthenticator"]["client_secret"] == "[secret]"
    # the hub's proxy-public Service is a LoadBalancer by default: one load balancer
    (lb,) = [x for x in lines(document, "gcp", "idle") if x["item"].startswith("load balancer")]
    assert lb["item"] == "load balancer (jupyterhub release gcp-hub)"
    assert lb["monthlyUsd"] == round(0.025 * HOURS, 2)


def test_no_format_carries_a_secret_set_in_the_stack_file(tmp_path: Path, prices: Prices) -> None:
    stack = yaml.safe_load((STACKS / "Pulumi.staging.yaml").read_text())
    cipher = "v1:PLANTEDCIPHERTEXTxyz=="  # what `pulumi config set --secret` writes
    stack["config"]["pangeo-binder:secrets"] = {
        cloud: {"githubClientSecret": {"secure": f"{cipher}{cloud}"}} for cloud in ("gcp", "aws")
    }
    stack_file = tmp_path / "Pulumi.staging.yaml"
    stack_file.write_text(yaml.safe_dump(stack))
    evaluation = build.evaluate(ROOT, "staging", stack_file, stacks=STACKS)
    assert "secrets" in evaluation["secretKeys"]
    # the program got the placeholder, never the ciphertext, and nothing shows it
    assert runtime.PLACEHOLDER in json.dumps(evaluation["records"])
    assert "PLANTEDCIPHERTEXT" not in json.dumps(evaluation["records"])
    document = build.plan(evaluation, prices)
    for render in RENDERERS.values():
        output = render(document)
        assert "PLANTEDCIPHERTEXT" not in output
        assert runtime.PLACEHOLDER not in output


def copy_project(target: Path) -> None:
    """The project's files (tracked and new, not ignored) in a fresh git repository."""
    copy_checkout(target)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-qm", "base")


def git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=plan test", "-c", "user.email=plan@example.org"]
    return subprocess.run(
        ["git", *identity, *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def test_compare_shows_only_the_changed_pool_and_its_price(tmp_path: Path, prices: Prices) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    stack_file = repo / "tests" / "stacks" / "Pulumi.staging.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["pangeo-binder:clouds"]["gcp"]["nodePools"]["gpu"]["maxNodes"] = 8  # was 4
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))  # keep the pools' order
    git(repo, "commit", "-qam", "double the GPU pool")

    stacks = repo / "tests" / "stacks"
    document = build.full_plan(repo, "staging", compare="HEAD~1", prices=prices, stacks=stacks)
    delta = document["delta"]
    assert delta["resourcesAdded"] == [] and delta["resourcesRemoved"] == []
    assert delta["resourcesChanged"] == [
        {
            "cloud": "gcp",
            "type": "gcp:container/nodePool:NodePool",
            "name": "gcp-gke-pool-gpu",
            "inputs": ["autoscaling"],
        }
    ]
    # The hub's values do not depend on maxNodes; the pool's "at maxNodes" alert rule does.
    assert [(v["release"], v["path"]) for v in delta["valuesChanged"]] == [
        ("prometheus", "serverFiles.alerting_rules.yml.groups")
    ]
    assert delta["idleMonthlyUsd"] == 0
    per_node = 0.38 + 0.35 + 100 * 0.1 / HOURS + 0.005  # machine, T4, 100 GB disk, address
    assert delta["ceilingMonthlyUsd"] == pytest.approx(4 * per_node * HOURS, abs=0.05)
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone
    markdown = RENDERERS["markdown"](document)
    assert (
        "| changed | gcp | gcp:container/nodePool:NodePool | gcp-gke-pool-gpu | autoscaling |"
        in markdown
    )
    assert f"| ceiling (every pool at maxNodes) | ${delta['ceilingMonthlyUsd']:,.2f} |" in markdown


@pytest.fixture(scope="module")
def real_documents() -> dict[str, dict[str, Any]]:
    """Both stacks planned with the real price file, as docs/topics/cost.md quotes them."""
    return plan_docs.documents(ROOT)


def test_cost_page_quotes_the_plans_own_figures(real_documents: dict[str, Any]) -> None:
    page = (ROOT / "docs" / "topics" / "cost.md").read_text()
    generated = plan_docs.section(real_documents)
    assert generated in page, (
        "docs/topics/cost.md is stale: run `python -m pangeo_binder.plan.docs`"
    )


# The real price file prices every item the plans of both stacks count, on both clouds: a
# missing figure would leave a line out of a total (docs/topics/cost.md, "Estimates").
def stack_machines(stack: str) -> list[tuple[str, str, str, str]]:
    """(cloud, region, pool, machine type) for every machine a stack file can start, the
    extra EKS `instanceTypes` included."""
    config = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]
    found = []
    for cloud, settings in config["pangeo-binder:clouds"].items():
        for pool, spec in settings["nodePools"].items():
            for machine in dict.fromkeys([spec["machineType"], *spec.get("instanceTypes", [])]):
                found.append((cloud, settings["region"], pool, machine))
    return found


@pytest.mark.parametrize("stack", plan_docs.STACKS)
def test_every_machine_in_the_stack_files_has_an_on_demand_price(stack: str) -> None:
    prices = Prices.load()
    machines = stack_machines(stack)
    assert {cloud for cloud, *_ in machines} == {"gcp", "aws"}
    missing = [
        (cloud, region, machine)
        for cloud, region, _, machine in machines
        if prices.hourly(cloud, region, "machines", machine, field="onDemand") is None
    ]
    assert missing == []


def test_the_real_plans_leave_nothing_unpriced(real_documents: dict[str, dict[str, Any]]) -> None:
    unpriced = {
        (stack, cloud): block["cost"]["unpriced"]
        for stack, document in real_documents.items()
        for cloud, block in document["clouds"].items()
    }
    assert set(unpriced) == {(s, c) for s in plan_docs.STACKS for c in ("gcp", "aws")}
    assert unpriced == {key: [] for key in unpriced}


def test_estimates_are_marked_on_their_lines(real_documents: dict[str, dict[str, Any]]) -> None:
    """A line priced from a documented estimate says so in its source; list prices do not."""
    aws = real_documents["staging"]["clouds"]["aws"]["cost"]["lines"]
    sources = {line["item"]: line["source"] for line in aws if line["scope"] == "ceiling"}
    assert sources["pool dask: r5.4xlarge (first of 4 types) (spot)"].endswith("(estimate)")
    assert sources["pool core: boot disk 30 GB gp3"].endswith("(estimate)")
    assert not sources["pool core: t3a.large (on-demand)"].endswith("(estimate)")


def test_the_hub_on_eks_is_priced_as_the_nlb_its_service_asks_for(
    real_documents: dict[str, dict[str, Any]],
) -> None:
    """aws/hub_address.py annotates the proxy Service for an NLB with one Elastic IP per
    public subnet: the plan prices the NLB's hours and one NLCU, and its addresses are the
    Elastic IPs' own lines (one per zone), not a Classic Load Balancer."""
    for stack in plan_docs.STACKS:
        idle = {
            line["item"]: line
            for line in real_documents[stack]["clouds"]["aws"]["cost"]["lines"]
            if line["scope"] == "idle"
        }
        assert idle["network load balancer (jupyterhub release jupyterhub)"]["unitUsd"] == 0.0225
        assert idle["NLB capacity, 1 NLCU (jupyterhub release jupyterhub)"]["unitUsd"] == 0.006
        assert not [item for item in idle if item.startswith("classic load balancer")]
        addresses = [item for item in idle if item.startswith("Elastic IP aws-hub-address-")]
        assert len(addresses) == 3  # one per public subnet the NLB spans


def test_a_service_without_the_nlb_annotation_is_a_classic_load_balancer() -> None:
    prices = Prices(copy.deepcopy(TEST_PRICES))
    classic = cost.aws_load_balancer(prices, "us-west-2", "Service x", {})
    nlb = cost.aws_load_balancer(prices, "us-west-2", "Service x", {cost.AWS_LB_TYPE: "nlb"})
    assert [(c.item, c.price.usd_per_hour) for c in classic] == [
        ("classic load balancer (Service x)", 0.025)
    ]
    assert [c.price.usd_per_hour for c in nlb] == [0.0225, 0.006]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["sources"]["test"].pop("read"), "sources.test: needs `url` and `read`"),
        (lambda d: d["sources"]["test"].pop("url"), "sources.test: needs `url` and `read`"),
        (
            lambda d: d["aws"]["us-west-2"]["machines"]["r5.xlarge"].pop("source"),
            "aws.us-west-2.machines.r5.xlarge: a figure without `source`",
        ),
        (
            lambda d: d["gcp"]["all-regions"]["controlPlane"].update(source="nowhere"),
            "gcp.all-regions.controlPlane: source 'nowhere' is not under `sources`",
        ),
    ],
)
def test_a_price_without_a_source_or_a_date_is_refused_when_loaded(
    tmp_path: Path, damage: Any, message: str
) -> None:
    data = copy.deepcopy(TEST_PRICES)
    damage(data)
    price_file = tmp_path / "prices.yaml"
    price_file.write_text(yaml.safe_dump(data))
    with pytest.raises(cost.PriceFileError) as refused:
        Prices.load(price_file)
    assert message in str(refused.value)
    Prices.load()  # the real file passes


def test_doubling_the_gpu_pools_moves_the_ceiling_by_the_list_prices(tmp_path: Path) -> None:
    """staging, and staging with every GPU pool's maxNodes doubled, priced with the real price
    file: the ceiling moves within 5% of what the published list prices say, computed here
    from those prices, not from the plan's code or data."""
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    stack_file = repo / "tests" / "stacks" / "Pulumi.staging.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    added = {}
    for cloud, settings in stack["config"]["pangeo-binder:clouds"].items():
        for pool in settings["nodePools"].values():
            if "gpu" in pool:
                added[cloud] = pool["maxNodes"]
                pool["maxNodes"] *= 2
    assert added == {"gcp": 4, "aws": 4}
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))
    git(repo, "commit", "-qam", "double the GPU pools")

    stacks = repo / "tests" / "stacks"
    document = build.full_plan(repo, "staging", "HEAD~1", Prices.load(), stacks=stacks)
    # GCP, us-central1, per added node: n1-standard-8 $0.38/h (Google's Compute Engine price
    # list; the 2023 pricing calculator estimate gives $1,664.39 for 4,380 h), one T4 $0.35/h
    # (https://cloud.google.com/compute/gpus-pricing), 100 GB balanced PD $0.10/GB-month, one
    # external IPv4 $0.005/h (https://cloud.google.com/vpc/network-pricing).
    gcp_node = 0.38 + 0.35 + 100 * 0.10 / HOURS + 0.005
    # AWS, us-west-2, per added node: g4dn.xlarge $0.526/h (https://aws.amazon.com/ec2/pricing/
    # on-demand/), its boot volume (100 GB gp3 at $0.08/GB-month,
    # https://aws.amazon.com/ebs/pricing/), one public IPv4 $0.005/h (AWS, from 2024-02-01).
    aws_node = 0.526 + 100 * 0.08 / HOURS + 0.005
    expected = (added["gcp"] * gcp_node + added["aws"] * aws_node) * HOURS  # ~ $3,700
    delta = document["delta"]
    assert delta["idleMonthlyUsd"] == 0
    assert delta["ceilingMonthlyUsd"] == pytest.approx(expected, rel=0.05)
    for cloud in ("gcp", "aws"):
        assert document["clouds"][cloud]["cost"]["unpriced"] == []


def test_every_price_on_file_names_a_dated_source() -> None:
    data = yaml.safe_load(
        (ROOT / "components" / "pangeo_binder" / "data" / "prices.yaml").read_text()
    )
    sources = data["sources"]
    for source in sources.values():
        assert source["url"].startswith("https://") and source["read"] and source["note"]
    figures = 0

    def walk(node: Any, path: str) -> None:
        nonlocal figures
        if isinstance(node, dict) and "source" in node:
            figures += 1
            assert node["source"] in sources, path
            values = [v for k, v in node.items() if k != "source"]
            assert values and all(isinstance(v, int | float) and v > 0 for v in values), path
        elif isinstance(node, dict):
            for key, child in node.items():
                walk(child, f"{path}.{key}")

    for cloud in ("gcp", "aws"):
        walk(data[cloud], cloud)
    assert figures > 20


# Where the plan runs without this repository's tests: a copy without `tests/`, an installed
# package, and a ref whose engine was still `tests/harness.py`.
MARKED_HOURS = 1000  # the copies' price file says so: a figure only their package gives


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files without `tests/`, its price file marked with MARKED_HOURS."""
    repo = tmp_path_factory.mktemp("copy")
    copy_project(repo)
    # its stack file is the suite's staging (the checkout's may be a fork's, of one cloud)
    shutil.copy2(STACKS / "Pulumi.staging.yaml", repo / "Pulumi.staging.yaml")
    shutil.rmtree(repo / "tests")
    price_file = repo / "components" / "pangeo_binder" / "data" / "prices.yaml"
    data = yaml.safe_load(price_file.read_text())
    data["hoursPerMonth"] = MARKED_HOURS
    price_file.write_text(yaml.safe_dump(data))
    return repo


def run_plan_cli(cwd: Path, pythonpath: Path) -> dict[str, Any]:
    """`python -m pangeo_binder.plan --stack staging --format json` run in `cwd` with only
    `pythonpath` before the interpreter's own packages (this checkout's editable install)."""
    result = subprocess.run(
        [sys.executable, "-m", "pangeo_binder.plan", "--stack", "staging", "--format", "json"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(pythonpath)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def assert_priced_by_the_marked_package(document: dict[str, Any]) -> None:
    """Both clouds' resources and costs, priced with MARKED_HOURS: the package that ran is
    the copy's, not this checkout's."""
    assert sorted(document["clouds"]) == ["aws", "gcp"]
    hourly = []
    for cloud, block in document["clouds"].items():
        assert any(r["type"].startswith(f"{cloud}:") for r in block["resources"]), cloud
        cost = block["cost"]
        assert 0 < cost["idleMonthlyUsd"] < cost["ceilingMonthlyUsd"], cloud
        for line in cost["lines"]:
            month = line["quantity"] * line["unitUsd"] * MARKED_HOURS
            assert line["monthlyUsd"] == pytest.approx(month, abs=0.01), line
            hourly.append(abs(line["monthlyUsd"] - month * HOURS / MARKED_HOURS) > 0.01)
    assert any(hourly)  # 1000 hours gave other totals than 730 would


def test_the_plan_runs_in_a_project_without_tests(project_copy: Path) -> None:
    assert not (project_copy / "tests").exists()
    assert_priced_by_the_marked_package(run_plan_cli(project_copy, project_copy / "components"))


def test_the_plan_runs_from_an_installed_package(project_copy: Path, tmp_path: Path) -> None:
    """An adopter's project: its program and stack file, the package installed (not
    editable), no `tests/` and no `components/` anywhere."""
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(site), str(project_copy)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (site / "pangeo_binder" / "testing.py").is_file()
    assert not list(site.rglob("tests"))
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml", "__main__.py"):
        shutil.copy2(project_copy / name, project / name)
    # The program builds the hub image from its own images/hub.
    shutil.copytree(project_copy / "images", project / "images")
    assert_priced_by_the_marked_package(run_plan_cli(project, site))


def test_compare_evaluates_a_ref_whose_engine_was_tests_harness(
    tmp_path: Path, staging_eval: dict[str, Any]
) -> None:
    """A ref that keeps its engine in `tests/` and none in the package, as before
    `pangeo_binder.testing` existed, is evaluated with that engine, to the same result."""
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    engine = repo / "components" / "pangeo_binder" / "testing.py"
    source = engine.read_text()
    shim = (repo / "tests" / "harness.py").read_text()
    engine.unlink()
    (repo / "tests" / "legacy_engine.py").write_text(source)
    (repo / "tests" / "harness.py").write_text(
        shim.replace("from pangeo_binder.testing import", "from legacy_engine import")
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the engine in tests/")
    legacy = build.evaluate_ref(repo, "HEAD", "staging")
    by_urn = {r["urn"]: r for r in staging_eval["records"]}
    assert {r["urn"]: r for r in legacy["records"]} == by_urn  # registered in any order
    assert {key: value for key, value in legacy.items() if key != "records"} == {
        key: value for key, value in staging_eval.items() if key != "records"
    }


# What an operator sees: config problems without a traceback, a stack new against the ref,
# a client secret the stack file lacks, the summary before the detail.


def scratch_project(root: Path, stack: str, config: dict[str, Any]) -> Path:
    """A Pulumi project at `root` running this checkout's program with one stack file."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py", "components"):
        (root / name).symlink_to(ROOT / name)
    stack_file = root / f"Pulumi.{stack}.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return stack_file


def staging_file_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]


def test_config_problems_are_listed_without_a_traceback(tmp_path: Path, capsys) -> None:
    """A `cloud:` typo and a misspelt hub key: every problem at once, naming its key, exit 1;
    not the runner's traceback, not a KeyError from the plan's own secrets."""
    config = staging_file_config()
    config["pangeo-binder:cloud"] = config.pop("pangeo-binder:clouds")
    config["pangeo-binder:hub"]["allowedOrgs"] = config["pangeo-binder:hub"].pop(
        "allowedOrganizations"
    )
    scratch_project(tmp_path / "p", "typo", config)
    assert cli.main(["--stack", "typo", "--root", str(tmp_path / "p")]) == 1
    error = capsys.readouterr().err
    assert error.startswith(
        "error: Pulumi.typo.yaml: 2 problem(s) in the pangeo-binder stack config:\n"
    )
    assert "  - cloud: unknown key 'cloud' (did you mean 'clouds'?); accepted: " in error
    assert "  - hub.allowedOrgs: unknown key 'allowedOrgs' (did you mean " in error
    assert "Traceback" not in error and "KeyError" not in error


def test_a_stack_new_in_the_working_tree_is_all_added_against_the_ref(
    tmp_path: Path, prices: Prices
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    shutil.copy(repo / "Pulumi.staging.yaml", repo / "Pulumi.alice.yaml")  # not committed
    document = build.full_plan(repo, "alice", compare="HEAD", prices=prices)
    delta = document["delta"]
    assert delta["newStack"] is True
    resources = [
        (c, r["type"], r["name"]) for c, b in document["clouds"].items() for r in b["resources"]
    ]
    assert sorted((r["cloud"], r["type"], r["name"]) for r in delta["resourcesAdded"]) == sorted(
        resources
    )
    assert delta["resourcesRemoved"] == [] and delta["resourcesChanged"] == []
    idle = sum(b["cost"]["idleMonthlyUsd"] for b in document["clouds"].values())
    assert delta["idleMonthlyUsd"] == pytest.approx(idle, abs=0.01)
    text = RENDERERS["text"](document)
    assert "the stack is new (no Pulumi.alice.yaml at HEAD)" in text
    assert f"{len(resources)} added, 0 removed, 0 changed" in text
    assert "New stack: `Pulumi.alice.yaml` does not exist at `HEAD`" in RENDERERS["markdown"](
        document
    )
    assert git(repo, "worktree", "list").count("\n") == 1  # no worktree was needed


def test_a_missing_client_secret_is_a_warning_naming_the_command(tmp_path: Path) -> None:
    """The plan fills a missing secret with a placeholder and goes on (it is offline and the
    project's own stack files hold none); it says which one `pulumi preview` will stop on."""
    config = staging_file_config()
    config["pangeo-binder:secrets"] = {"gcp": {"githubClientSecret": {"secure": "v1:abc"}}}
    stack_file = scratch_project(tmp_path / "p", "mine", config)
    assert build.secret_warnings(stack_file, "mine") == [
        "Pulumi.mine.yaml has no secrets.aws.githubClientSecret: the plan uses a placeholder, "
        "pulumi preview and up stop until it is set: pulumi config set --secret --path "
        "'secrets.aws.githubClientSecret' VALUE --stack mine"
    ]
    del config["pangeo-binder:secrets"]
    stack_file.write_text(yaml.safe_dump({"config": config}))
    assert [w.split(":")[0] for w in build.secret_warnings(stack_file, "mine")] == [
        "Pulumi.mine.yaml has no secrets.aws.githubClientSecret",
        "Pulumi.mine.yaml has no secrets.gcp.githubClientSecret",
    ]


def test_the_text_starts_with_a_summary(staging_plan: dict[str, Any]) -> None:
    document = {**staging_plan, "warnings": ["Pulumi.staging.yaml has no secrets.x"]}
    out = RENDERERS["text"](document).splitlines()
    detail = next(i for i, x in enumerate(out) if x.startswith("(detail follows"))
    head = out[:detail]
    assert out[detail + 2] == f"== {next(iter(staging_plan['clouds']))} =="
    assert head[:3] == ["Offline plan for stack staging", "", "== summary =="]
    assert len(head) < 25
    gcp = staging_plan["clouds"]["gcp"]
    custom = sum("/" in r["type"] for r in gcp["resources"])
    buckets = sum(r["type"].startswith("gcp:storage/") for r in gcp["resources"])
    line = next(x for x in head if x.startswith("  gcp: "))
    assert line.startswith(
        f"  gcp: {custom} resources, {len(gcp['resources']) - custom} components, "
        f"{len(gcp['releases'])} Helm releases; idle ${gcp['cost']['idleMonthlyUsd']:,.2f}"
    )
    assert f"gcp:storage {buckets}" in head[head.index(line) + 1]
    total = sum(b["cost"]["ceilingMonthlyUsd"] for b in staging_plan["clouds"].values())
    assert any(x.startswith("  cost: idle ") and f"ceiling ${total:,.2f}" in x for x in head)
    assert "  warning: Pulumi.staging.yaml has no secrets.x" in head
    markdown = RENDERERS["markdown"](document)
    assert markdown.index("- warning: Pulumi.staging.yaml") < markdown.index("### Monthly cost")
