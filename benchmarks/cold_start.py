"""Cold-start model: from "start" to a running server, per user pool and menu image.

`python benchmarks/cold_start.py --stack staging [--figures FILE] [--format text|json]`
(`make cold-start STACK=staging`). Not a measurement: it adds up published figures and marked
estimates from `benchmarks/cold_start.yaml` (node boot, the image's pull by size and path, the
server's start) for each user pool of the stack file and each image its profile offers. The
operator replaces the figures with the hub's own (docs/topics/cold-start.md says how).

Paths of the pull: `internet` (no cache), `cache` (the in-region cache, whole image), on GKE
`streamed` (image streaming from Artifact Registry in the region: the cache is one), on EKS
`cache+soci` (SOCI parallel pull on instances large enough), and on the default user pool
`warm` (a user placeholder held the node and the continuous pre-puller has the menu image:
the server's start only).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder.config import Clouds
from pangeo_binder.hub.config import HubSettings, images_for
from pangeo_binder.hub.placeholders import default_user_pool
from pangeo_binder.machines import shape

ROOT = Path(__file__).resolve().parent.parent
FIGURES = Path(__file__).with_name("cold_start.yaml")
NAMESPACE = "pangeo-binder:"


@dataclass(frozen=True)
class Step:
    """One part of the wait, with where its figure comes from."""

    what: str
    seconds: float
    source: str
    estimate: bool


@dataclass
class Estimate:
    """The wait for one pool, image and pull path."""

    cloud: str
    pool: str
    machine: str
    image: str
    path: str
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return round(sum(step.seconds for step in self.steps), 1)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds}


def stack_settings(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The `pangeo-binder:*` keys of `Pulumi.<stack>.yaml`, without the namespace (secrets are
    not read: the model needs none of them)."""
    text = (root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    config = (yaml.safe_load(text) or {}).get("config") or {}
    return {
        key[len(NAMESPACE) :]: value
        for key, value in config.items()
        if key.startswith(NAMESPACE) and key != f"{NAMESPACE}secrets"
    }


def _step(what: str, seconds: float, figure: dict[str, Any]) -> Step:
    return Step(what, round(seconds, 1), str(figure["source"]), bool(figure.get("estimate")))


def image_figure(figures: dict[str, Any], image: str) -> dict[str, Any]:
    """The size entry of an image (by name without tag or digest), else `default`."""
    name = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image.split(":")[0]
    return figures["images"].get(name) or figures["images"]["default"]


def pull_paths(cloud: str, machine: str, figures: dict[str, Any], warm: bool) -> list[str]:
    """The pull paths this cloud and machine can take; `warm` only where placeholders can
    hold a node (the default user pool)."""
    held = ["warm"] if warm else []
    if cloud == "gcp":
        return ["internet", "cache", "streamed", *held]
    soci = figures["pull"]["sociParallel"]
    node = shape(cloud, machine)
    eligible = (
        node is not None
        and node.vcpus >= soci["minVcpus"]
        and node.memory_gib >= soci["minMemoryGib"]
    )
    return ["internet", "cache", *(["cache+soci"] if eligible else []), *held]


def pull_step(path: str, size_gb: float, figures: dict[str, Any]) -> Step | None:
    """The image's pull on one path; None when nothing is pulled (`warm`)."""
    pull = figures["pull"]
    if path == "internet":
        return _step(
            "pull from the internet", size_gb * pull["internet"]["secondsPerGb"], pull["internet"]
        )
    if path == "cache":
        return _step(
            "pull from the in-region cache", size_gb * pull["cache"]["secondsPerGb"], pull["cache"]
        )
    if path == "streamed":
        return _step(
            "stream from Artifact Registry", pull["streamed"]["fixedSeconds"], pull["streamed"]
        )
    if path == "cache+soci":
        soci = pull["sociParallel"]
        seconds = size_gb * pull["cache"]["secondsPerGb"] * soci["factor"]
        return _step("parallel pull (SOCI) from the cache", seconds, soci)
    return None


def estimates(settings: dict[str, Any], figures: dict[str, Any]) -> list[Estimate]:
    """Every user pool x its menu images x pull path, for each cloud of the stack file."""
    hub = HubSettings.model_validate(settings.get("hub") or {})
    clouds = Clouds.model_validate(settings.get("clouds") or {})
    found = []
    for cloud in ("aws", "gcp"):
        cloud_settings = getattr(clouds, cloud)
        if cloud_settings is None:
            continue
        pools = cloud_settings.node_pools
        placeholder_pool = default_user_pool(pools, hub, cloud)
        for key, pool in pools.items():
            if pool.purpose != "user":
                continue
            machine = pool.machine_type
            gpu = pool.gpu is not None
            for menu in images_for(hub.images, "gpu" if gpu else "cpu").values():
                size = image_figure(figures, menu.image)
                for path in pull_paths(cloud, machine, figures, key == placeholder_pool):
                    estimate = Estimate(cloud, key, machine, menu.image, path)
                    if path != "warm":
                        boot = figures["nodeBoot"][cloud]
                        estimate.steps.append(_step("node boot", boot["seconds"], boot))
                        if gpu:
                            extra = figures["nodeBoot"]["gpuExtra"]
                            estimate.steps.append(_step("GPU driver", extra["seconds"], extra))
                        estimate.steps.append(_step(f"size {size['sizeGb']:g} GB", 0, size))
                    pulled = pull_step(path, float(size["sizeGb"]), figures)
                    if pulled is not None:
                        estimate.steps.append(pulled)
                    start = figures["serverStart"]
                    estimate.steps.append(_step("server start", start["seconds"], start))
                    found.append(estimate)
    return found


def render_text(stack: str, found: list[Estimate]) -> str:
    """A table per pool and image: each path's total, then the sources once."""
    lines = [f"Cold start, stack {stack} (seconds; * = estimate, see the sources below)"]
    sources: dict[str, str] = {}
    current = None
    for estimate in found:
        head = (estimate.cloud, estimate.pool, estimate.image)
        if head != current:
            current = head
            lines.append(
                f"\n{estimate.cloud} pool {estimate.pool} ({estimate.machine}), {estimate.image}"
            )
        parts = []
        for step in estimate.steps:
            mark = "*" if step.estimate else ""
            sources.setdefault(step.source, str(len(sources) + 1))
            shown = (
                f"({step.what}{mark})"
                if not step.seconds
                else f"{step.what} {step.seconds:g}{mark}"
            )
            parts.append(f"{shown} [{sources[step.source]}]")
        lines.append(f"  {estimate.path:<11} {estimate.seconds:>6g}  = " + " + ".join(parts))
    lines.append("\nSources:")
    lines += [f"  [{number}] {source}" for source, number in sources.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="reads Pulumi.<stack>.yaml")
    parser.add_argument("--figures", type=Path, default=FIGURES, help="the figures file")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--root", type=Path, default=ROOT, help="folder of the stack files")
    args = parser.parse_args(argv)
    figures = yaml.safe_load(args.figures.read_text(encoding="utf-8"))
    found = estimates(stack_settings(args.stack, args.root), figures)
    if args.format == "json":
        print(json.dumps([e.to_json() for e in found], indent=2))
    else:
        print(render_text(args.stack, found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
