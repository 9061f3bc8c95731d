"""The public hub's spawner: KubeSpawner that starts what the anonymous BinderHub asks for.

Runs inside the public JupyterHub (shipped as `hub.extraConfig`). BinderHub, with auth off,
creates a user, then starts its server with `user_options` holding the image it built, a token
it made up and the repository's links; the server is the image's own `jupyter notebook`, which
takes that token. These facts follow BinderHub's launcher and its documented spawner mixin
(jupyterhub/binderhub main at b9fad99: binderhub/launcher.py, binderspawner_mixin.py); the
code here is ours.

One thing more than BinderHub's mixin: the image must be one the public BinderHub built, under
its own registry prefix (`c.PublicBinderSpawner.image_prefix`, from the values). Anyone holding
a server's token could otherwise ask the hub for any image at all, a miner's included.
"""

from __future__ import annotations

from typing import Any

from traitlets import Unicode

try:  # in the hub image; the tests import this module with KubeSpawner installed as well
    from kubespawner import KubeSpawner
    from tornado import web
except ImportError:  # pragma: no cover - only a hub without KubeSpawner gets here
    KubeSpawner = object  # type: ignore[assignment,misc]
    web = None  # type: ignore[assignment]

# user_options BinderHub sends that the server sees as environment, named as BinderHub's own
# spawner names them: repo_url as BINDER_REPO_URL, the binder_* ones upper-cased.
PASSED_OPTIONS = (
    "repo_url",
    "binder_ref_url",
    "binder_launch_host",
    "binder_persistent_request",
    "binder_request",
)


class LaunchRefused(Exception):
    """A launch request the public hub will not start, with the reason."""


def launch_image(user_options: dict[str, Any], prefix: str) -> str:
    """The image of an anonymous launch: present, with a token, under `prefix`."""
    if not prefix:
        raise LaunchRefused("the public hub has no image prefix configured; refusing every image")
    if not user_options.get("token"):
        raise LaunchRefused("token required")
    image = user_options.get("image")
    if not isinstance(image, str) or not image:
        raise LaunchRefused("image required")
    if not image.startswith(prefix):
        raise LaunchRefused(f"image {image} was not built by this Binder")
    return image


def server_args(*, port: int, base_url: str, token: str, default_url: str) -> list[str]:
    """Command-line of the image's notebook server: the made-up token, the hub's route, and
    each option again under ServerApp (jupyter_server) for images without the classic
    notebook. No `allow_origin`: other sites' pages cannot call a public server."""
    classic = [
        "--ip=0.0.0.0",
        f"--port={port}",
        f"--NotebookApp.base_url={base_url}",
        f"--NotebookApp.token={token}",
        "--NotebookApp.trust_xheaders=True",
    ]
    if default_url:
        classic.append(f"--NotebookApp.default_url={default_url}")
    return classic + [a.replace("--NotebookApp.", "--ServerApp.") for a in classic[2:]]


def binder_env(user_options: dict[str, Any]) -> dict[str, str]:
    """Environment from BinderHub's launch request (the repository, its ref's URL, ...)."""
    return {
        ("BINDER_REPO_URL" if key == "repo_url" else key.upper()): str(user_options[key])
        for key in PASSED_OPTIONS
        if key in user_options
    }


class PublicBinderSpawner(KubeSpawner):  # type: ignore[misc,valid-type]
    """KubeSpawner for anonymous BinderHub launches of this Binder's own images."""

    image_prefix = Unicode(
        "",
        config=True,
        help="Only images under this registry prefix are started.",
    )

    def start(self) -> Any:
        try:
            self.image = launch_image(self.user_options, self.image_prefix)
        except LaunchRefused as refused:
            raise web.HTTPError(400, str(refused)) from None
        return super().start()

    def get_args(self) -> list[str]:
        return server_args(
            port=self.port,
            base_url=self.server.base_url,
            token=self.user_options["token"],
            default_url=self.default_url,
        ) + list(self.args)

    def get_env(self) -> dict[str, str]:
        return {**super().get_env(), **binder_env(self.user_options)}


def configure(c: Any) -> None:
    """Wire the spawner into the hub's config."""
    c.JupyterHub.spawner_class = PublicBinderSpawner


if "c" in globals():  # executed as hub.extraConfig
    configure(c)  # type: ignore[name-defined]  # noqa: F821
