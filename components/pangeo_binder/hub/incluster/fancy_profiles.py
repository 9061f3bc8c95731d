"""JupyterHub extraConfig: jupyterhub-fancy-profiles' spawn form, when the hub image has it.

The form adds "build your own image" (through BinderHub at /services/binder) to the profile
list's image option. z2jh's default hub image (quay.io/jupyterhub/k8s-hub:4.4.0: JupyterHub
5.5.0, KubeSpawner 7.0.0) does not ship the package, so the hub must keep working without it:
then KubeSpawner's own form is shown, with the menu and "your own image" but no building.
`setup_ui(c)` (jupyterhub-fancy-profiles 0.7.0) sets KubeSpawner's
additional_profile_form_template_paths and a static handler under /hub/fancy-profiles/, so
the hub's base URL stays `/`.

Executed by z2jh's jupyterhub_config.py (which defines `c`); imported by the test suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MISSING = (
    "jupyterhub-fancy-profiles is not installed in this hub image: KubeSpawner's own form is "
    "shown, without building images from a repository (set hub.hubImage, see "
    "docs/howto/binderhub.md)"
)


def enable(c: Any, log: Callable[[str], Any] = print) -> bool:
    """Install the fancy form if the package imports; say so and change nothing if not."""
    try:
        from jupyterhub_fancy_profiles import setup_ui
    except ImportError:
        log(MISSING)
        return False
    setup_ui(c)
    return True


if "c" in globals():  # executed as hub.extraConfig
    enable(c)  # type: ignore[name-defined]  # noqa: F821
