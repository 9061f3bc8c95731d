"""Run the hub pod of a rendered jupyterhub release as local processes on 127.0.0.1.

The hub pod runs `jupyterhub --config /usr/local/etc/jupyterhub/jupyterhub_config.py` with the
chart's ConfigMap and Secret mounted under /usr/local/etc/jupyterhub (the chart's own
jupyterhub_config.py and z2jh.py come from that ConfigMap; z2jh.py reads the values from
secret/values.yaml). `hub_files` lays the same files out under a temporary folder, following
the rendered Deployment's volume mounts, and points the two chart files at that folder instead
of /usr/local/etc/jupyterhub: a path prefix, changed nowhere else, so every line of the chart's
logic runs as in the pod, hub.extraConfig included.

What the pod gets from Kubernetes is replaced by a file in the chart's own extension folder
(jupyterhub_config.d, loaded after hub.config and before hub.extraConfig): the Service names
and fixed ports become free ports on 127.0.0.1, GitHub becomes tests/fake_github.py, and the
spawner is tests/offline_spawner.py (KubeSpawner without the API calls).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chart_render import find, render, require_chart_files
from fake_github import GitHubApp

POD_ROOT = "/usr/local/etc/jupyterhub"  # where the hub container mounts the chart's files
HUB_CONTAINER_PORT = 8081  # jupyterhub_config.py's fixed hub_bind_url port
TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Ports:
    proxy: int  # the public port (the proxy-public Service's 80/443)
    proxy_api: int
    hub: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy}"


@dataclass(frozen=True)
class HubPod:
    """The hub container as rendered: its files under `root`, its command and environment."""

    root: Path
    args: list[str]
    env: dict[str, str]
    proxy_token: str


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return data | dict(secret.get("stringData") or {})


def _local(path: str, root: Path) -> Path:
    assert path.startswith(POD_ROOT), f"{path} is outside {POD_ROOT}"
    return root / path.removeprefix(POD_ROOT).lstrip("/")


def hub_pod(objects: list[dict[str, Any]], root: Path, namespace: str) -> HubPod:
    """Lay out the hub container's mounted files under `root` (see the module docstring)."""
    deployment = find(objects, "Deployment", "hub")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "hub")
    sources: dict[str, dict[str, str]] = {}
    for volume in pod["volumes"]:
        if "configMap" in volume:
            sources[volume["name"]] = find(objects, "ConfigMap", volume["configMap"]["name"])[0][
                "data"
            ]
        elif "secret" in volume:
            secret = find(objects, "Secret", volume["secret"]["secretName"])[0]
            sources[volume["name"]] = _decoded(secret)
    for mount in container["volumeMounts"]:
        files = sources.get(mount["name"])
        if files is None:
            continue  # the database volume: the hub's working directory holds the sqlite file
        target = _local(mount["mountPath"], root)
        if "subPath" in mount:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[mount["subPath"]])
        else:
            target.mkdir(parents=True, exist_ok=True)
            for key, text in files.items():
                (target / key).write_text(text)
    for name in ("jupyterhub_config.py", "z2jh.py"):
        path = root / name
        text = path.read_text()
        assert POD_ROOT in text, f"the chart's {name} no longer reads {POD_ROOT}"
        path.write_text(text.replace(POD_ROOT, str(root)))

    secrets = sources["secret"]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = secrets[item["valueFrom"]["secretKeyRef"]["key"]]
        else:
            raise AssertionError(f"the hub container's env {item} is new to this test")
    args = [arg.replace(POD_ROOT, str(root)) for arg in container["args"]]
    return HubPod(root, args, env, secrets["hub.config.ConfigurableHTTPProxy.auth_token"])


def hub_config(objects: list[dict[str, Any]], root: Path, namespace: str, monkeypatch: Any) -> Any:
    """The traitlets Config z2jh's own jupyterhub_config.py makes from a rendered release, as
    in the hub pod (its env and the Services' variables the chart reads), ready for
    KubeSpawner: a kubeconfig naming a server nobody listens on (KubeSpawner loads one in
    __init__). z2jh.py caches the values it read, so it is imported afresh."""
    from kubernetes_asyncio.config import kube_config
    from traitlets.config.loader import PyFileConfigLoader

    pod = hub_pod(objects, root / "etc", namespace=namespace)
    for name, value in {
        **pod.env,
        "HUB_SERVICE_HOST": "hub",
        "HUB_SERVICE_PORT": "8081",
        "PROXY_API_SERVICE_PORT": "8001",
        "PROXY_PUBLIC_SERVICE_HOST": "proxy-public",
        "PROXY_PUBLIC_SERVICE_PORT": "443",
    }.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("z2jh", None)
    try:
        config = PyFileConfigLoader("jupyterhub_config.py", path=str(pod.root)).load_config()
    finally:
        sys.modules.pop("z2jh", None)
    (root / "kubeconfig").write_text(kubeconfig("http://127.0.0.1:9"))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(root / "kubeconfig"))
    return config


def run_on_own_loop(coroutine: Any) -> Any:
    """Run `coroutine` on a loop of its own (asyncio.run would unset the thread's loop the
    Pulumi mocks use), then cancel the client-closing task KubeSpawner leaves on it."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def local_network(ports: Ports, github_url: str) -> str:
    """jupyterhub_config.d/ file: what Kubernetes gives the pod, on 127.0.0.1 instead."""
    hub = f"http://127.0.0.1:{ports.hub}"
    return f"""\
# Written by tests/local_hub.py: the pod's network, replaced by local ports and fakes.
c.JupyterHub.hub_bind_url = {hub!r}
c.JupyterHub.hub_connect_url = {hub!r}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports.proxy_api}"
c.JupyterHub.public_url = "{ports.public_url}"  # the values' https://<domain>
c.GitHubOAuthenticator.github_url = {github_url!r}
c.GitHubOAuthenticator.oauth_callback_url = "{ports.public_url}/hub/oauth_callback"
c.JupyterHub.spawner_class = "offline_spawner.OfflineKubeSpawner"
for service in c.JupyterHub.services:  # the culler calls the hub's fixed container port
    if "command" in service:
        service["command"] = [
            arg.replace("localhost:{HUB_CONTAINER_PORT}", "127.0.0.1:{ports.hub}")
            for arg in service["command"]
        ]
"""


def kubeconfig(server: str) -> str:
    """A kubeconfig whose only cluster is `server` (tests/fake_github.kube_api_recorder)."""
    return f"""\
apiVersion: v1
kind: Config
clusters: [{{name: recorder, cluster: {{server: "{server}"}}}}]
users: [{{name: nobody, user: {{token: not-a-token}}}}]
contexts: [{{name: recorder, context: {{cluster: recorder, user: nobody, namespace: binder}}}}]
current-context: recorder
"""


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until `url` answers (any HTTP status); fail with the process's log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited {process.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{tail(log)}")


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[Any]:
    """A process for the length of the block; stopped (TERM, then KILL) however it ends."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)
                    process.wait(timeout=5)


@contextmanager
def local_hub(
    pod: HubPod, ports: Ports, *, chp: str, github_url: str, kube_url: str, workdir: Path
) -> Iterator[str]:
    """configurable-http-proxy (as the chart's proxy pod runs it) and the hub; yields the
    public URL once the hub answers through the proxy."""
    config_d = pod.root / "jupyterhub_config.d"
    config_d.mkdir(exist_ok=True)
    (config_d / "50-local-network.py").write_text(local_network(ports, github_url))
    (workdir / "kubeconfig").write_text(kubeconfig(kube_url))
    base = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    hub = f"http://127.0.0.1:{ports.hub}"
    proxy_args = [
        chp,
        "--ip=127.0.0.1",
        "--api-ip=127.0.0.1",
        f"--api-port={ports.proxy_api}",
        f"--port={ports.proxy}",
        f"--default-target={hub}",
        f"--error-target={hub}/hub/error",
    ]
    proxy_env = base | {"CONFIGPROXY_AUTH_TOKEN": pod.proxy_token}
    hub_env = (
        base
        | pod.env
        | {
            # Kubernetes' Service variables, which the chart's config reads (get_name_env).
            "PROXY_API_SERVICE_PORT": str(ports.proxy_api),
            "HUB_SERVICE_PORT": str(ports.hub),
            "PYTHONPATH": str(TESTS),
            "KUBECONFIG": str(workdir / "kubeconfig"),
            "HOME": str(workdir),
        }
    )
    proxy_log, hub_log = workdir / "proxy.log", workdir / "hub.log"
    with running(proxy_args, proxy_env, workdir, proxy_log) as proxy:
        wait_for(f"http://127.0.0.1:{ports.proxy_api}/api/routes", proxy, proxy_log, 20)
        jupyterhub = [str(Path(sys.executable).parent / pod.args[0]), *pod.args[1:]]
        with running(jupyterhub, hub_env, workdir, hub_log) as process:
            wait_for(f"{hub}/hub/health", process, hub_log, 45)
            # The hub adds its route to the proxy once it is up.
            wait_for(f"{ports.public_url}/hub/health", process, hub_log, 15)
            yield ports.public_url


def find_tool(name: str, *also: Path) -> str | None:
    """`name` on PATH, else in one of `also` (where .ci/run installs it)."""
    found = shutil.which(name)
    if found:
        return found
    return next((str(p / name) for p in also if (p / name).is_file()), None)


def prepare_hub(values: dict[str, Any], workdir: Path) -> tuple[HubPod, Ports, GitHubApp]:
    """The jupyterhub release of `values` rendered with the pinned chart, its hub pod laid out
    under `workdir`, free ports, and the OAuth app the fake GitHub plays (the values' client,
    called back on the local proxy)."""
    from pangeo_binder.charts import JUPYTERHUB

    require_chart_files((JUPYTERHUB,))
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    pod = hub_pod(objects, workdir / "etc-jupyterhub", namespace="binder")
    ports = Ports.pick()
    github_config = values["hub"]["config"]["GitHubOAuthenticator"]
    app = GitHubApp(
        client_id=github_config["client_id"],
        client_secret=github_config["client_secret"],
        callback_url=f"{ports.public_url}/hub/oauth_callback",
    )
    return pod, ports, app
