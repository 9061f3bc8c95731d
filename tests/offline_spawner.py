"""KubeSpawner without Kubernetes, for the hub that tests/test_spawn_form_browser.py runs.

Imported by that hub process (its PYTHONPATH holds tests/), never by pytest itself. Everything
that renders and checks the spawn form is KubeSpawner's own: the profile list (the callable that
hub_access.py installs), the options form (with fancy-profiles' template) and
`load_user_options`, which enforces the profile filter on a submitted form. Only what would reach
the Kubernetes API is replaced. The client setup in `__init__` still runs: the test gives the hub
a kubeconfig whose server records every request, and asserts that it got none.
"""

from __future__ import annotations

from typing import Any, NoReturn

from kubespawner import KubeSpawner

NO_CLUSTER = "this test hub has no Kubernetes: it shows the spawn form and starts no server"


class NoClusterError(RuntimeError):
    """A code path that would have called the Kubernetes API."""


class OfflineKubeSpawner(KubeSpawner):
    """KubeSpawner's form and profile handling; no pods, reflectors or API calls."""

    async def start(self) -> NoReturn:  # type: ignore[override]
        """Apply the chosen profile as KubeSpawner would (refusing a hidden one), then stop."""
        await self.load_user_options()
        raise NoClusterError(f"{NO_CLUSTER} (profile {self.user_options.get('profile')!r})")

    async def poll(self) -> int:
        """Never started, so never running (JupyterHub's convention: an exit status)."""
        return 0

    async def stop(self, now: bool = False) -> None:
        """Nothing runs, nothing to stop."""

    async def progress(self) -> Any:
        """No pod events to stream."""
        return
        yield  # an async generator, as JupyterHub expects

    async def _start_watching_pods(self, replace: bool = False) -> NoReturn:
        raise NoClusterError(f"{NO_CLUSTER}: the pod reflector was asked for")

    async def _start_watching_events(self, replace: bool = False) -> NoReturn:
        raise NoClusterError(f"{NO_CLUSTER}: the event reflector was asked for")
