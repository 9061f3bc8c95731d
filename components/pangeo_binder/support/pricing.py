"""OpenCost's custom pricing from the plan's price file (data/prices.yaml), so that the cost
dashboard and the plan price the same machines the same way.

OpenCost's custom provider prices a node as vCPUs x CPU + GiB x RAM (+ GPUs x GPU), one price
per resource for the whole cluster, hourly. A cluster mixes machine families (e2 core nodes,
n2 user nodes), so no single pair reproduces every machine exactly: the pair is fitted to the
cluster's own pools (least squares on the relative error), and `node_errors` says how far each
pool's node lands from its listed price (tests bound it). Spot CPU and RAM are that pair
times one discount fitted to the spot pools (`spot_discount`), never above on-demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from pangeo_binder.machines import Cloud, shape
from pangeo_binder.plan.cost import Prices


@dataclass(frozen=True)
class PoolMachine:
    machine_type: str
    spot: bool
    gpus: int = 0


def _fit(rows: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Per-vCPU and per-GiB prices minimising the squared relative error over (vcpus, gib,
    price) rows; with one row, price split by the rows' own vCPU:GiB weight."""
    if not rows:
        return 0.0, 0.0
    # Relative error: divide each row by its price, then ordinary least squares for (c, r).
    a11 = sum((v / p) ** 2 for v, _, p in rows)
    a12 = sum((v / p) * (g / p) for v, g, p in rows)
    a22 = sum((g / p) ** 2 for _, g, p in rows)
    b1 = sum(v / p for v, _, p in rows)
    b2 = sum(g / p for _, g, p in rows)
    det = a11 * a22 - a12 * a12
    if abs(det) < 1e-12 * max(a11 * a22, 1e-30):  # one shape: GCP's 1 vCPU ~ 7.5 GiB rule
        vcpus, gib, price = rows[0]
        return price * 0.7 / vcpus, price * 0.3 / gib
    cpu = (b1 * a22 - b2 * a12) / det
    ram = (a11 * b2 - a12 * b1) / det
    if cpu <= 0 or ram <= 0:  # keep both positive: split the mean price per resource
        vcpus, gib, price = rows[0]
        return price * 0.7 / vcpus, price * 0.3 / gib
    return cpu, ram


def _rows(
    cloud: Cloud, region: str, machines: list[PoolMachine], prices: Prices
) -> list[tuple[float, float, float]]:
    """(vcpus, GiB, on-demand price) of the GPU-less pools' machines: the on-demand pools',
    or every pool's when all are spot (OpenCost's spot split is a discount of this one)."""
    plain = [m for m in machines if not m.gpus]
    on_demand = [m for m in plain if not m.spot] or plain
    rows = []
    for machine in on_demand:
        found = shape(cloud, machine.machine_type)
        price = prices.machine(cloud, region, machine.machine_type, spot=False)
        if found is None or price is None:
            continue
        rows.append((float(found.vcpus), float(found.memory_gib), price.usd_per_hour))
    return rows


def spot_discount(
    cloud: Cloud,
    region: str,
    machines: list[PoolMachine],
    cpu: float,
    ram: float,
    prices: Prices,
) -> float:
    """One factor for spot CPU and RAM alike: OpenCost prices a spot node as vCPUs x spotCPU +
    GiB x spotRAM, so spot = the on-demand split x this factor keeps both at or below their
    on-demand prices (a split fitted to the spot pools alone put spot CPU above on-demand).
    Least squares on the relative error of the spot pools' nodes (exact for one spot machine
    type), at most 1; 1 when no spot pool has a listed spot price. The spot prices are the
    plan's (Prices.machine: the estimates of `spotMachines` first)."""
    ratios = []
    for machine in machines:
        if not machine.spot or machine.gpus:
            continue
        found = shape(cloud, machine.machine_type)
        price = prices.machine(cloud, region, machine.machine_type, spot=True)
        if found is None or price is None or price.usd_per_hour <= 0:
            continue
        fitted = found.vcpus * cpu + found.memory_gib * ram
        ratios.append(fitted / price.usd_per_hour)
    if not ratios or not any(ratios):
        return 1.0
    return min(1.0, sum(ratios) / sum(r * r for r in ratios))


def custom_pricing(
    cloud: Cloud, region: str, machines: list[PoolMachine], prices: Prices | None = None
) -> dict[str, str]:
    """OpenCost's `costModel` (hourly USD per vCPU, per GiB of RAM, per GPU; storage per
    GiB-hour), as the strings its config map holds."""
    prices = prices or Prices.load()
    cpu, ram = _fit(_rows(cloud, region, machines, prices))
    discount = spot_discount(cloud, region, machines, cpu, ram, prices)
    spot_cpu, spot_ram = cpu * discount, ram * discount
    gpu = 0.0
    for machine in machines:
        found = shape(cloud, machine.machine_type)
        price = prices.machine(cloud, region, machine.machine_type, spot=False)
        if machine.gpus and found is not None and price is not None:
            rest = price.usd_per_hour - found.vcpus * cpu - found.memory_gib * ram
            gpu = max(gpu, rest / machine.gpus, 0.0)
    disk_kind = "pd-balanced" if cloud == "gcp" else "gp3"
    disk = prices.hourly(cloud, region, "disks", disk_kind)
    return {
        "CPU": f"{cpu:.6f}",
        "RAM": f"{ram:.6f}",
        "spotCPU": f"{spot_cpu:.6f}",
        "spotRAM": f"{spot_ram:.6f}",
        "GPU": f"{gpu:.6f}",
        "storage": f"{disk.usd_per_hour if disk else 0.0:.8f}",
    }


def node_errors(
    cloud: Cloud, region: str, machines: list[PoolMachine], pricing: dict[str, str],
    prices: Prices | None = None,
) -> dict[str, float]:  # fmt: skip
    """Per machine type, (OpenCost's price - listed price) / listed price."""
    prices = prices or Prices.load()
    errors = {}
    for machine in machines:
        found = shape(cloud, machine.machine_type)
        listed = prices.machine(cloud, region, machine.machine_type, machine.spot)
        if found is None or listed is None:
            continue
        prefix = "spot" if machine.spot else ""
        cpu = float(pricing[f"{prefix}CPU" if prefix else "CPU"])
        ram = float(pricing[f"{prefix}RAM" if prefix else "RAM"])
        ours = found.vcpus * cpu + found.memory_gib * ram + machine.gpus * float(pricing["GPU"])
        errors[machine.machine_type] = (ours - listed.usd_per_hour) / listed.usd_per_hour
    return errors
