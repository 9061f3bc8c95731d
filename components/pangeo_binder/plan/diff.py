"""The difference between two plans: resources added, removed and changed (which
inputs), Helm values changed (which paths), and the cost delta."""

from __future__ import annotations

from typing import Any

MISSING = "(absent)"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay whole (charts replace lists whole)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _index(plan: dict[str, Any], key: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (cloud, item["type"], item["name"]): item
        for cloud, block in plan["clouds"].items()
        for item in block.get(key, [])
    }


def delta(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """What `new` changes relative to `old` (both built by `build.plan`)."""
    new_inputs, old_inputs = new["_inputs"], old["_inputs"]
    new_res, old_res = _index(new, "resources"), _index(old, "resources")
    added = [{"cloud": k[0], **new_res[k]} for k in new_res if k not in old_res]
    removed = [{"cloud": k[0], **old_res[k]} for k in old_res if k not in new_res]
    changed = []
    for key in new_res.keys() & old_res.keys():
        before, after = old_inputs.get(key, {}), new_inputs.get(key, {})
        inputs = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if inputs and not key[1].startswith("kubernetes:helm.sh/"):
            changed.append({"cloud": key[0], "type": key[1], "name": key[2], "inputs": inputs})
        elif inputs:  # a release: name what changed besides its values, values below
            rest = [k for k in inputs if k != "values"]
            if rest:
                changed.append({"cloud": key[0], "type": key[1], "name": key[2], "inputs": rest})
    changed.sort(key=lambda c: (c["cloud"], c["type"], c["name"]))
    values = []
    for cloud in sorted(new["clouds"].keys() | old["clouds"].keys()):
        releases_new = {r["name"]: r for r in new["clouds"].get(cloud, {}).get("releases", [])}
        releases_old = {r["name"]: r for r in old["clouds"].get(cloud, {}).get("releases", [])}
        for name in sorted(releases_new.keys() | releases_old.keys()):
            after = _flatten((releases_new.get(name) or {}).get("values", {}))
            before = _flatten((releases_old.get(name) or {}).get("values", {}))
            for path in sorted(before.keys() | after.keys()):
                if before.get(path, MISSING) != after.get(path, MISSING):
                    values.append(
                        {
                            "cloud": cloud,
                            "release": name,
                            "path": path,
                            "before": before.get(path, MISSING),
                            "after": after.get(path, MISSING),
                        }
                    )

    def total(plan: dict[str, Any], field: str) -> float:
        return sum(block["cost"][field] for block in plan["clouds"].values())

    return {
        "against": old.get("ref", ""),
        "resourcesAdded": added,
        "resourcesRemoved": removed,
        "resourcesChanged": changed,
        "valuesChanged": values,
        "idleMonthlyUsd": round(total(new, "idleMonthlyUsd") - total(old, "idleMonthlyUsd"), 2),
        "ceilingMonthlyUsd": round(
            total(new, "ceilingMonthlyUsd") - total(old, "ceilingMonthlyUsd"), 2
        ),
    }
