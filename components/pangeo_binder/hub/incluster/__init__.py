"""Python that runs inside the cluster, shipped as chart values and imported by the tests.

Each module is plain Python: its functions take what they need as arguments; a short block
at its end wires them into the `c` config object when the chart's config file executes it.
"""

from __future__ import annotations

from importlib import resources


def source(module: str) -> str:
    """The text of one module of this package, as a chart's extraConfig entry."""
    return resources.files(__package__).joinpath(f"{module}.py").read_text(encoding="utf-8")
