"""What a run registered, grouped per cloud: the resource tree and the Helm releases.

Plain functions over the records `runtime.py` prints (type, name, urn, parent, inputs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pangeo_binder.plan.runtime import PLACEHOLDER, SECRET

CLOUDS = ("gcp", "aws")

# Keys whose values are credentials whatever a program marked as secret: chart values
# such as `hub.config.GitHubOAuthenticator.client_secret`, `proxy.secretToken`,
# `hub.cookieSecret`, `apiToken`, passwords, private keys, kubeconfigs.
SECRET_KEY = re.compile(
    r"secret|token|passw|api_?key|private_?key|cookie|credential|kubeconfig|\.pem$",
    re.IGNORECASE,
)
# Keys that match SECRET_KEY but hold settings the policies read: the launch template's
# IMDSv2 switch (`metadataOptions.httpTokens: required`). Booleans are never redacted either
# (`automountServiceAccountToken: false` is a setting, not a credential).
NOT_SECRET_KEYS = frozenset({"httpTokens"})


def _secret_key(key: Any, item: Any) -> bool:
    if str(key) in NOT_SECRET_KEYS or isinstance(item, bool) or item == {}:
        return False
    return bool(SECRET_KEY.search(str(key)))


def redact(value: Any, scrub: frozenset[str] = frozenset()) -> Any:
    """`value` with known secret keys' values and any `scrub` string replaced by SECRET."""
    if isinstance(value, dict):
        return {
            key: SECRET if _secret_key(key, item) else redact(item, scrub)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, scrub) for item in value]
    if isinstance(value, str) and any(s in value for s in scrub | {PLACEHOLDER} if s):
        return SECRET
    return value


@dataclass
class Release:
    """A Helm release (helm.sh/v3 Release, helm.sh/v4 Chart, ...) and its values."""

    name: str
    chart: str
    version: str
    values: dict[str, Any]

    @property
    def chart_name(self) -> str:
        """`jupyterhub` for `jupyterhub`, `oci://.../jupyterhub` or `repo/jupyterhub`."""
        return self.chart.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class CloudTree:
    records: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # urn -> name, for parents

    def resources(self) -> list[dict[str, Any]]:
        """Each resource with its parent's name, its inputs (redacted) and the options the
        policies read; `provider` is the explicit provider's name, "" for the default one."""
        return [
            {
                "type": r["type"],
                "name": r["name"],
                "parent": self.names.get(r["parent"], ""),
                "inputs": r["inputs"],
                "options": self._options(r.get("options") or {}),
            }
            for r in self.records
        ]

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        provider = str(options.get("provider", ""))
        return {
            "protect": bool(options.get("protect")),
            "retainOnDelete": bool(options.get("retainOnDelete")),
            "ignoreChanges": list(options.get("ignoreChanges") or []),
            "provider": self.names.get(provider, provider),
        }

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] in types]

    def releases(self) -> list[Release]:
        """Every Helm release, found by type (`kubernetes:helm.sh/<version>:<Kind>`)."""
        return [
            Release(
                name=str(r["inputs"].get("name") or r["name"]),
                chart=str(r["inputs"].get("chart", "")),
                version=str(r["inputs"].get("version", "")),
                values=r["inputs"].get("values") or {},
            )
            for r in self.records
            if r["type"].startswith("kubernetes:helm.sh/") and "values" in r["inputs"]
        ]


def _cloud_of(record: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> str:
    """The cloud of the top-level component above `record` (`pangeo-binder:gcp:Stack`)."""
    top = record
    while top["parent"] in by_urn:
        top = by_urn[top["parent"]]
    parts = top["type"].split(":")
    if len(parts) == 3 and parts[1] in CLOUDS:  # pangeo-binder:gcp:Stack
        return parts[1]
    prefix = top["name"].split("-", 1)[0]  # gcp-hub: children are named after their cloud
    if prefix in CLOUDS:
        return prefix
    return parts[0] if parts[0] in CLOUDS else "other"


def by_cloud(records: list[dict[str, Any]], scrub: frozenset[str]) -> dict[str, CloudTree]:
    """Records grouped per cloud, every input value redacted once, here."""
    by_urn = {r["urn"]: r for r in records}
    names = {r["urn"]: r["name"] for r in records}
    trees: dict[str, CloudTree] = {}
    for r in records:
        clean = {**r, "inputs": redact(r["inputs"], scrub)}
        trees.setdefault(_cloud_of(r, by_urn), CloudTree(names=names)).records.append(clean)
    return trees
