"""Monthly cost of what a run registered: `idle` (every pool at its minimum, or at the nodes
the hub's user placeholders keep up when that is more) and `ceiling` (every pool at maxNodes),
each as line items priced from `pangeo_binder/data/prices.yaml`.

Computed from the registered resources (node pools and groups with their machine type,
sizes, spot and disks; clusters; NAT gateways; addresses; KMS keys; load balancers), not
from the config, so any change to what the program builds shows up here.

Storage (buckets, registries) and traffic are not modelled, so the hub image
(`docker-build:index:Image`) has no line and is not listed as unpriced: it is built on the
machine that runs `pulumi up`, and its layers and cache are registry storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pangeo_binder.plan.tree import CloudTree
from pangeo_binder.scheduling import nodes_held

DATA = resources.files("pangeo_binder") / "data"

# Charts that put a Service of type LoadBalancer in front of themselves unless told not
# to: the value path and its default in the chart's values.yaml (z2jh 4.x
# `proxy.service.type`, dask-gateway 2026.3 `traefik.service.type`).
LOAD_BALANCED_CHARTS = {
    "jupyterhub": (("proxy", "service", "type"), "LoadBalancer"),
    "dask-gateway": (("traefik", "service", "type"), "LoadBalancer"),
}
# The annotation EKS's in-tree service controller reads to make a Network Load Balancer
# instead of a Classic one (aws/hub_address.py sets it on the hub's proxy Service), and the
# values that mean an NLB (`external` is the AWS Load Balancer Controller's NLB).
AWS_LB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"
AWS_NLB_TYPES = ("nlb", "external")
# A regional cluster puts nodes in three of the region's zones unless told otherwise
# (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters, read 2026-11-26).
GKE_REGIONAL_ZONES = 3


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str


class PriceFileError(ValueError):
    """A price file with a figure that cannot be traced to a dated source."""


def _undated(data: dict[str, Any]) -> list[str]:
    """Every problem that makes a figure untraceable: a source without `url` or `read` (the
    date it was read), a figure without `source`, or naming a source that is not listed."""
    sources = data.get("sources") or {}
    problems = [
        f"sources.{name}: needs `url` and `read` (the date it was read)"
        for name, source in sources.items()
        if not isinstance(source, dict) or not source.get("url") or not source.get("read")
    ]

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        figures = [k for k, v in node.items() if isinstance(v, int | float) and k != "source"]
        figures = [k for k in figures if not isinstance(node[k], bool)]
        if figures:
            source = node.get("source")
            if not source:
                problems.append(f"{path}: a figure without `source`")
            elif source not in sources:
                problems.append(f"{path}: source {source!r} is not under `sources`")
        for key, child in node.items():
            walk(child, f"{path}.{key}")

    for key, node in data.items():
        if key not in ("sources", "hoursPerMonth"):
            walk(node, key)
    return problems


class Prices:
    """The price file, read for one cloud and region; each lookup names its source URL.

    Refused when loaded if any figure lacks a source or any source lacks its date: a price
    nobody can trace is worse than a missing one, which the plan at least names."""

    def __init__(self, data: dict[str, Any]) -> None:
        problems = _undated(data)
        if problems:
            raise PriceFileError("price file refused:\n  " + "\n  ".join(problems))
        self.hours = float(data.get("hoursPerMonth", 730))
        self.sources = data.get("sources") or {}
        self.data = data

    @classmethod
    def load(cls, path: Path | None = None) -> Prices:
        text = path.read_text() if path else (DATA / "prices.yaml").read_text()
        return cls(yaml.safe_load(text))

    def _entry(self, cloud: str, region: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
        for scope in (region, "all-regions"):
            node: Any = (self.data.get(cloud) or {}).get(scope) or {}
            for key in keys:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                return node
        return None

    def _source(self, entry: dict[str, Any]) -> str:
        """The source's URL, marked when the source is a documented estimate."""
        source = self.sources.get(entry.get("source", "")) or {}
        url = source.get("url", entry.get("source", ""))
        return f"{url} (estimate)" if source.get("estimate") else url

    def hourly(self, cloud: str, region: str, *keys: str, field: str = "") -> Price | None:
        """The hourly price of `keys` (`machines`, `n2-highmem-4`; field `spot`), if listed."""
        entry = self._entry(cloud, region, keys)
        if entry is None:
            return None
        if field:
            value = entry.get(field)
        elif "usdPerHour" in entry:
            value = entry["usdPerHour"]
        elif "usdPerMonth" in entry:
            value = float(entry["usdPerMonth"]) / self.hours
        elif "usdPerGbMonth" in entry:
            value = float(entry["usdPerGbMonth"]) / self.hours
        else:
            value = None
        return None if value is None else Price(float(value), self._source(entry))

    def machine(self, cloud: str, region: str, machine: str, spot: bool) -> Price | None:
        """A machine's hourly price, on-demand or spot. A spot figure with a source of its own
        (an estimate beside a list price, `spotMachines`) comes first. The plan and OpenCost's
        fitted prices (support/pricing.py) both read machines through here."""
        kind = "spot" if spot else "onDemand"
        return (spot and self.hourly(cloud, region, "spotMachines", machine, field=kind)) or (
            self.hourly(cloud, region, "machines", machine, field=kind)
        )


@dataclass
class Charge:
    """One priced (or unpriceable) item with its idle and ceiling quantities."""

    item: str
    idle: float
    ceiling: float
    price: Price | None
    unpriced: str = ""  # the name warned about when price is None


@dataclass
class Estimate:
    hours: float
    charges: list[Charge] = field(default_factory=list)

    def lines(self, scope: str) -> list[dict[str, Any]]:
        out = []
        for charge in self.charges:
            quantity = charge.idle if scope == "idle" else charge.ceiling
            if charge.price is None or quantity == 0:
                continue
            unit = charge.price.usd_per_hour
            out.append(
                {
                    "item": charge.item,
                    "quantity": quantity,
                    "unitUsd": unit,
                    "monthlyUsd": round(quantity * unit * self.hours, 2),
                    "source": charge.price.source,
                    "scope": scope,
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        idle, ceiling = self.lines("idle"), self.lines("ceiling")
        unpriced = sorted(
            {c.unpriced for c in self.charges if c.price is None and (c.idle or c.ceiling)}
        )
        return {
            "idleMonthlyUsd": round(sum(line["monthlyUsd"] for line in idle), 2),
            "ceilingMonthlyUsd": round(sum(line["monthlyUsd"] for line in ceiling), 2),
            "lines": idle + ceiling,
            "unpriced": unpriced,
        }


@cache
def _builtin_gpu_families() -> frozenset[str]:
    """GCP families whose machine type includes its GPUs (priced with the machine)."""
    families = yaml.safe_load((DATA / "gcp.yaml").read_text())["machineFamilies"]
    return frozenset(name for name, facts in families.items() if facts.get("builtinGpu"))


def _fixed(prices: Prices, cloud: str, region: str, item: str, key: str, n: float = 1) -> Charge:
    return Charge(item, n, n, prices.hourly(cloud, region, key), f"{item} ({region})")


def _machine(
    prices: Prices, cloud: str, region: str, pool: str, machine: str, spot: bool, low, high
) -> Charge:
    label = "spot" if spot else "on-demand"
    price = prices.machine(cloud, region, machine, spot)
    return Charge(
        f"pool {pool}: {machine} ({label})", low, high, price, f"{machine} ({region}, {label})"
    )


def _disk(prices: Prices, cloud: str, region: str, pool: str, size: float, kind: str, low, high):
    per_gb = prices.hourly(cloud, region, "disks", kind)
    price = None if per_gb is None else Price(per_gb.usd_per_hour * size, per_gb.source)
    item = f"pool {pool}: boot disk {size:g} GB {kind}"
    return Charge(item, low, high, price, f"{kind} disk ({region})")


# gp3 includes 125 MiB/s and 3000 IOPS; what a volume provisions above is billed per month.
GP3_INCLUDED = {"throughput": (125, "MiB/s", "gp3-throughput"), "iops": (3000, "IOPS", "gp3-iops")}


def _gp3_performance(
    prices: Prices, region: str, pool: str, ebs: dict[str, Any], low, high
) -> list[Charge]:
    """A gp3 volume's throughput and IOPS above the included, priced per unit-month."""
    charges = []
    for field_name, (included, unit, key) in GP3_INCLUDED.items():
        extra = float(ebs.get(field_name) or included) - included
        if ebs.get("volumeType") != "gp3" or extra <= 0:
            continue
        per_unit = prices.hourly("aws", region, "disks", key)
        price = None if per_unit is None else Price(per_unit.usd_per_hour * extra, per_unit.source)
        item = f"pool {pool}: gp3 {field_name} {extra:g} {unit} above the included {included}"
        charges.append(Charge(item, low, high, price, f"{key} ({region})"))
    return charges


def _pool_name(record: dict[str, Any]) -> str:
    labels = record["inputs"].get("labels") or (record["inputs"].get("nodeConfig") or {}).get(
        "labels", {}
    )
    return labels.get("pangeo-binder.io/pool") or record["name"]


def _region_of_location(location: str) -> str:
    """`us-central1` for `us-central1` and for the zone `us-central1-b`."""
    return location.rsplit("-", 1)[0] if location.count("-") >= 2 else location


def _dig(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        values = values.get(key) if isinstance(values, dict) else None
    return values


def load_balancers(tree: CloudTree) -> list[tuple[str, dict[str, Any]]]:
    """One (name, Service annotations) per load balancer the cloud will create: LoadBalancer
    Services that are registered directly, and one per release of a chart that makes one by
    default. The annotations say which kind of load balancer AWS makes."""
    found = []
    for r in tree.of_type("kubernetes:core/v1:Service"):
        if (r["inputs"].get("spec") or {}).get("type") == "LoadBalancer":
            annotations = (r["inputs"].get("metadata") or {}).get("annotations") or {}
            found.append((f"Service {r['name']}", annotations))
    for release in tree.releases():
        if release.chart_name not in LOAD_BALANCED_CHARTS:
            continue
        path, default = LOAD_BALANCED_CHARTS[release.chart_name]
        if (_dig(release.values, path) or default) == "LoadBalancer":
            annotations = _dig(release.values, (*path[:-1], "annotations")) or {}
            found.append((f"{release.chart_name} release {release.name}", annotations))
    return found


def warm_nodes(tree: CloudTree) -> dict[str, int]:
    """Per pool, the nodes the jupyterhub release's user placeholders keep up while idle
    (`hub/placeholders.py`): the pool's idle quantity is at least that many."""
    held: dict[str, int] = {}
    for release in tree.releases():
        if release.chart_name != "jupyterhub":
            continue
        placeholder = (release.values.get("scheduling") or {}).get("userPlaceholder") or {}
        found = nodes_held(placeholder)
        if found:
            held[found[0]] = max(held.get(found[0], 0), found[1])
    return held


def aws_load_balancer(prices: Prices, region: str, name: str, annotations: dict) -> list[Charge]:
    """A Network Load Balancer (hours and one NLCU an hour) when the Service asks for one, else
    a Classic Load Balancer. An NLB's public addresses are the Elastic IPs it is given (their
    own lines); a Classic one's addresses are AWS's, one per zone, not counted here."""
    if annotations.get(AWS_LB_TYPE) in AWS_NLB_TYPES:
        return [
            _fixed(prices, "aws", region, f"network load balancer ({name})", "networkLoadBalancer"),
            _fixed(
                prices, "aws", region, f"NLB capacity, 1 NLCU ({name})", "networkLoadBalancerNlcu"
            ),
        ]
    return [_fixed(prices, "aws", region, f"classic load balancer ({name})", "loadBalancer")]


def chart_volumes(tree: CloudTree, prices: Prices, cloud: str, region: str) -> list[Charge]:
    """The volumes charts claim that bill around the clock: Prometheus' (the support stack),
    priced as the cloud's default disk kind."""
    charges = []
    kind = "pd-balanced" if cloud == "gcp" else "gp3"
    for chart in tree.of_type("kubernetes:helm.sh/v4:Chart"):
        if chart["inputs"].get("chart") != "prometheus":
            continue
        volume = ((chart["inputs"].get("values") or {}).get("server") or {}).get(
            "persistentVolume"
        ) or {}
        size = str(volume.get("size", ""))
        if volume.get("enabled") and size.endswith("Gi"):
            # Priced per GiB, as the pools' disks are (the clouds bill disks by the GiB).
            gib = float(size.removesuffix("Gi"))
            charge = _disk(prices, cloud, region, "support", gib, kind, 1, 1)
            charge.item = f"support: Prometheus volume {size} {kind}"
            charges.append(charge)
    return charges


def gcp_charges(tree: CloudTree, prices: Prices) -> list[Charge]:
    charges: list[Charge] = []
    clusters = tree.of_type("gcp:container/cluster:Cluster")
    private = {
        c["inputs"].get("name"): bool(
            (c["inputs"].get("privateClusterConfig") or {}).get("enablePrivateNodes")
        )
        for c in clusters
    }
    region = ""
    credited = False
    warm = warm_nodes(tree)
    for cluster in clusters:
        location = str(cluster["inputs"].get("location", ""))
        region = _region_of_location(location)
        zonal = location != region
        name = cluster["inputs"].get("name", cluster["name"])
        kind = "zonal" if zonal else "regional"
        charges.append(
            _fixed(prices, "gcp", region, f"GKE control plane ({kind}) {name}", "controlPlane")
        )
        fee, credit = (
            prices.hourly("gcp", region, "controlPlane"),
            prices.hourly("gcp", region, "zonalFreeTierCredit"),
        )
        if zonal and not credited and fee and credit:
            credited = True  # one credit per billing account, applied once
            amount = min(fee.usd_per_hour, credit.usd_per_hour)
            item = "GKE free tier credit (one zonal cluster per billing account)"
            charges.append(Charge(item, 1, 1, Price(-amount, credit.source)))
    for pool in tree.of_type("gcp:container/nodePool:NodePool"):
        inputs = pool["inputs"]
        location = str(inputs.get("location", "")) or region
        pool_region = _region_of_location(location)
        zones = len(inputs.get("nodeLocations") or []) or (
            1 if location != pool_region else GKE_REGIONAL_ZONES
        )
        scaling = inputs.get("autoscaling") or {}
        if "totalMinNodeCount" in scaling or "totalMaxNodeCount" in scaling:
            low, high = scaling.get("totalMinNodeCount", 0), scaling.get("totalMaxNodeCount", 0)
        elif scaling:
            low = scaling.get("minNodeCount", 0) * zones
            high = scaling.get("maxNodeCount", 0) * zones
        else:
            low = high = inputs.get("nodeCount", inputs.get("initialNodeCount", 0)) * zones
        node = inputs.get("nodeConfig") or {}
        machine = str(node.get("machineType", "e2-medium"))
        spot = bool(node.get("spot") or node.get("preemptible"))
        name = _pool_name(pool)
        low = min(max(low, warm.get(name, 0)), max(high, low))
        charges.append(_machine(prices, "gcp", pool_region, name, machine, spot, low, high))
        if machine.split("-", 1)[0] not in _builtin_gpu_families():
            for gpu in node.get("guestAccelerators") or []:
                count = gpu.get("count", 1)
                kind = "spot" if spot else "onDemand"
                charges.append(
                    Charge(
                        f"pool {name}: {count:g} x {gpu['type']} per node",
                        low * count,
                        high * count,
                        prices.hourly("gcp", pool_region, "gpus", gpu["type"], field=kind),
                        f"{gpu['type']} GPU ({pool_region}, {'spot' if spot else 'on-demand'})",
                    )
                )
        size = node.get("diskSizeGb", 100)
        kind = node.get("diskType", "pd-balanced")
        charges.append(_disk(prices, "gcp", pool_region, name, size, kind, low, high))
        if not private.get(inputs.get("cluster"), False):
            key = "publicIpv4Spot" if spot else "publicIpv4"
            item = f"pool {name}: external IPv4 address per node"
            price = prices.hourly("gcp", pool_region, key)
            what = f"{'spot VM' if spot else 'VM'} external IPv4 ({pool_region})"
            charges.append(Charge(item, low, high, price, what))
    for nat in tree.of_type("gcp:compute/routerNat:RouterNat"):
        charges.append(_fixed(prices, "gcp", region, f"Cloud NAT {nat['name']}", "natGateway"))
    for address in sorted(
        tree.of_type("gcp:compute/address:Address", "gcp:compute/globalAddress:GlobalAddress"),
        key=lambda r: r["name"],
    ):
        charges.append(
            _fixed(prices, "gcp", region, f"static IPv4 {address['name']}", "staticIpv4")
        )
    for key in tree.of_type("gcp:kms/cryptoKey:CryptoKey"):
        charges.append(_fixed(prices, "gcp", region, f"KMS key {key['name']}", "kmsKey"))
    for lb, _ in load_balancers(tree):
        charges.append(_fixed(prices, "gcp", region, f"load balancer ({lb})", "loadBalancer"))
    return charges + chart_volumes(tree, prices, "gcp", region)


def aws_charges(tree: CloudTree, prices: Prices) -> list[Charge]:
    charges: list[Charge] = []
    providers = tree.of_type("pulumi:providers:aws")
    region = str(providers[0]["inputs"].get("region", "")) if providers else ""
    for cluster in tree.of_type("aws:eks/cluster:Cluster"):
        extended = (cluster["inputs"].get("upgradePolicy") or {}).get("supportType") == "EXTENDED"
        key = "controlPlaneExtended" if extended else "controlPlane"
        name = cluster["inputs"].get("name", cluster["name"])
        support = "extended" if extended else "standard"
        charges.append(
            _fixed(prices, "aws", region, f"EKS control plane ({support} support) {name}", key)
        )
    templates = {r["id"]: r for r in tree.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    warm = warm_nodes(tree)
    public = {
        r["id"]
        for r in tree.of_type("aws:ec2/subnet:Subnet")
        if r["inputs"].get("mapPublicIpOnLaunch")
    }
    for group in tree.of_type("aws:eks/nodeGroup:NodeGroup"):
        inputs = group["inputs"]
        scaling = inputs.get("scalingConfig") or {}
        low, high = scaling.get("minSize", 0), scaling.get("maxSize", 0)
        types = inputs.get("instanceTypes") or ["t3.medium"]
        machine = str(types[0]) + (f" (first of {len(types)} types)" if len(types) > 1 else "")
        spot = inputs.get("capacityType") == "SPOT"
        name = _pool_name(group)
        low = min(max(low, warm.get(name, 0)), max(high, low))
        charge = _machine(prices, "aws", region, name, str(types[0]), spot, low, high)
        charge.item = charge.item.replace(str(types[0]), machine, 1)
        charges.append(charge)
        template = templates.get(str((inputs.get("launchTemplate") or {}).get("id", "")))
        mappings = (template or {}).get("inputs", {}).get("blockDeviceMappings") or []
        ebs = (mappings[0].get("ebs") or {}) if mappings else {}
        if "volumeSize" in ebs and "volumeType" in ebs:
            size, kind = ebs["volumeSize"], ebs["volumeType"]
            charges.append(_disk(prices, "aws", region, name, size, kind, low, high))
            charges += _gp3_performance(prices, region, name, ebs, low, high)
        else:  # EKS's defaults apply; not guessed here
            item = f"pool {name}: boot volume (EKS default)"
            charges.append(Charge(item, low, high, None, f"{item} ({region})"))
        if any(subnet in public for subnet in inputs.get("subnetIds") or []):
            item = f"pool {name}: public IPv4 address per node"
            price = prices.hourly("aws", region, "publicIpv4")
            charges.append(Charge(item, low, high, price, f"public IPv4 ({region})"))
    for nat in tree.of_type("aws:ec2/natGateway:NatGateway"):
        charges.append(_fixed(prices, "aws", region, f"NAT gateway {nat['name']}", "natGateway"))
    # By name: sibling resources register in no fixed order (one Elastic IP per zone).
    for eip in sorted(tree.of_type("aws:ec2/eip:Eip"), key=lambda r: r["name"]):
        charges.append(_fixed(prices, "aws", region, f"Elastic IP {eip['name']}", "publicIpv4"))
    for key in tree.of_type("aws:kms/key:Key"):
        charges.append(_fixed(prices, "aws", region, f"KMS key {key['name']}", "kmsKey"))
    for lb, service_annotations in load_balancers(tree):
        charges.extend(aws_load_balancer(prices, region, lb, service_annotations))
    return charges + chart_volumes(tree, prices, "aws", region)


def estimate(cloud: str, tree: CloudTree, prices: Prices) -> dict[str, Any]:
    """The cost block of one cloud, in the plan's JSON shape."""
    charges = {"gcp": gcp_charges, "aws": aws_charges}.get(cloud, lambda *_: [])(tree, prices)
    return Estimate(prices.hours, charges).to_json()
