"""Images through the in-region cache: the rewrite as Python, then through the real code paths.

The hub side: the values of a stack with a cache mapping, rendered with the real z2jh chart,
loaded by the chart's own jupyterhub_config.py, and turned into a pod by KubeSpawner 7.0.0's
`get_pod_manifest` followed by the `modify_pod_hook` our entry installs (as KubeSpawner's
`_start` does before it creates the pod). The gateway side: dask-gateway's own
`Backend.process_cluster_options` with our options handler, and the extraConfig entries
executed in order as the chart's config file runs them.
"""

from __future__ import annotations

import base64
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_render import find, render, validate_values
from conftest import release
from harness import Run, run_program, stack_config, with_value
from local_hub import hub_config, run_on_own_loop
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.hub import dask_values
from pangeo_binder.hub.image_cache import (
    GATEWAY_ENTRY,
    HUB_ENTRY,
    gateway_extra_config_image_cache,
    gateway_settings_image_cache,
    jupyterhub_image_cache,
)
from pangeo_binder.hub.incluster import gateway_options, source
from pangeo_binder.hub.incluster.image_cache import (
    cached_image,
    make_modify_pod_hook,
    original_image,
    rewrite_pod,
)
from pangeo_binder.hub.profiles import cached_profile_list
from test_hub_incluster import (
    GatewayUser,
    context,
    kube_cluster_config,  # noqa: F401  (a fixture, used by name)
    process,
    staging_config,
)

GAR = "us-central1-docker.pkg.dev/pangeo-binder-staging"
# The staging stack's own cache names (clouds.gcp.imageCache, CloudOutputs.image_cache).
CACHE = {
    "docker.io": f"{GAR}/staging-docker-hub",
    "quay.io": f"{GAR}/staging-quay",
    "ghcr.io": f"{GAR}/staging-ghcr",
}
ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
AWS_CACHE = {
    "docker.io": f"{ECR}/docker-hub",
    "quay.io": f"{ECR}/quay",
    "public.ecr.aws": f"{ECR}/ecr-public",
    "registry.k8s.io": f"{ECR}/k8s",
    "ghcr.io": f"{ECR}/ghcr",
}
DIGEST = "sha256:" + "0123456789abcdef" * 4
NOTEBOOK = "quay.io/pangeo/pangeo-notebook:2026.06.04"
BUILT = f"{GAR}/binder/binder-example-repo-abc123:4f2e1d"  # the stack's own registry

REWRITES = [
    (NOTEBOOK, f"{GAR}/staging-quay/pangeo/pangeo-notebook:2026.06.04"),
    (f"quay.io/pangeo/ml-notebook@{DIGEST}", f"{GAR}/staging-quay/pangeo/ml-notebook@{DIGEST}"),
    ("ghcr.io/org/img:1.0", f"{GAR}/staging-ghcr/org/img:1.0"),
    ("python:3.12", f"{GAR}/staging-docker-hub/library/python:3.12"),
    (f"python@{DIGEST}", f"{GAR}/staging-docker-hub/library/python@{DIGEST}"),
    (
        "pangeo/base-notebook:2026.01.01",
        f"{GAR}/staging-docker-hub/pangeo/base-notebook:2026.01.01",
    ),
    ("docker.io/library/python:3.12", f"{GAR}/staging-docker-hub/library/python:3.12"),
    ("docker.io/python:3.12", f"{GAR}/staging-docker-hub/library/python:3.12"),
    ("index.docker.io/pangeo/x:1", f"{GAR}/staging-docker-hub/pangeo/x:1"),
    ("registry-1.docker.io/library/ubuntu:24.04", f"{GAR}/staging-docker-hub/library/ubuntu:24.04"),
]
UNTOUCHED = [
    "myregistry.example.org:5000/team/image:v1",
    "localhost/image:v1",
    "localhost:5000/image:v1",
    "nvcr.io/nvidia/pytorch:24.01-py3",
    "public.ecr.aws/lambda/python:3.12",  # not fronted by the GCP cache
    BUILT,
    f"{GAR}/staging-quay/pangeo/pangeo-notebook:2026.06.04",  # already through the cache
]


@pytest.mark.parametrize(("upstream", "cached"), REWRITES)
def test_fronted_registries_go_through_the_cache(upstream: str, cached: str) -> None:
    assert cached_image(upstream, CACHE) == cached
    assert cached_image(cached, CACHE) == cached  # idempotent


@pytest.mark.parametrize("ref", UNTOUCHED)
def test_other_registries_are_left_alone(ref: str) -> None:
    assert cached_image(ref, CACHE) == ref


def test_aws_cache_fronts_its_registries() -> None:
    assert cached_image("public.ecr.aws/lambda/python:3.12", AWS_CACHE) == (
        f"{ECR}/ecr-public/lambda/python:3.12"
    )
    assert cached_image("registry.k8s.io/pause:3.10", AWS_CACHE) == f"{ECR}/k8s/pause:3.10"
    assert cached_image("python:3.12", AWS_CACHE) == f"{ECR}/docker-hub/library/python:3.12"
    # The stack's own ECR registry shares the cache's host and is still left alone.
    assert cached_image(f"{ECR}/binder/repo:tag", AWS_CACHE) == f"{ECR}/binder/repo:tag"


def test_no_cache_changes_nothing() -> None:
    assert cached_image(NOTEBOOK, {}) == NOTEBOOK
    assert cached_image("python:3.12", {}) == "python:3.12"


@pytest.mark.parametrize(("upstream", "cached"), REWRITES)
def test_the_cache_name_reads_back_as_the_same_upstream_image(upstream: str, cached: str) -> None:
    """Back to a name outside the cache that the cache maps to the same place (Docker Hub's
    aliases and implicit `library/` read back in their short form)."""
    back = original_image(cached, CACHE)
    assert not back.startswith(GAR)
    assert cached_image(back, CACHE) == cached


def test_official_images_read_back_bare() -> None:
    assert original_image(f"{GAR}/staging-docker-hub/library/python:3.12", CACHE) == "python:3.12"
    assert original_image(f"{GAR}/staging-docker-hub/pangeo/x:1", CACHE) == "docker.io/pangeo/x:1"
    assert original_image(f"{GAR}/staging-quay/pangeo/x:1", CACHE) == "quay.io/pangeo/x:1"


def test_the_pod_pulls_through_the_cache_and_shows_the_upstream_name() -> None:
    cached = cached_image(NOTEBOOK, CACHE)
    pod = {
        "spec": {
            "containers": [
                {
                    "image": cached,  # a menu image, already referenced through the cache
                    "env": [
                        {"name": "JUPYTER_IMAGE", "value": cached},
                        {"name": "JUPYTER_IMAGE_SPEC", "value": cached},
                        {"name": "OTHER", "value": cached},
                    ],
                }
            ],
            "initContainers": [{"image": "python:3.12"}],
        }
    }
    rewrite_pod(pod, CACHE)
    container = pod["spec"]["containers"][0]
    assert container["image"] == cached
    env = {v["name"]: v["value"] for v in container["env"]}
    assert env["JUPYTER_IMAGE"] == env["JUPYTER_IMAGE_SPEC"] == NOTEBOOK
    assert env["OTHER"] == cached  # only the image variables are the user's view
    assert (
        pod["spec"]["initContainers"][0]["image"] == f"{GAR}/staging-docker-hub/library/python:3.12"
    )


def test_a_hook_set_before_still_runs() -> None:
    seen = []

    def earlier(spawner: Any, pod: Any) -> Any:
        seen.append(pod["spec"]["containers"][0]["image"])
        return pod

    hook = make_modify_pod_hook(CACHE, earlier)
    pod = hook(None, {"spec": {"containers": [{"image": NOTEBOOK}]}})
    assert seen == [NOTEBOOK]
    assert pod["spec"]["containers"][0]["image"] == cached_image(NOTEBOOK, CACHE)


# --- the hub's values ----------------------------------------------------------------------


def menu_images(profiles: list[dict[str, Any]]) -> list[str]:
    return [
        choice["kubespawner_override"]["image"]
        for profile in profiles
        for choice in profile["profile_options"]["image"]["choices"].values()
    ]


def test_menu_images_are_referenced_through_the_cache(staging: Run) -> None:
    values = release(staging, "gcp", "jupyterhub")["values"]
    # The stack's own cache (CloudOutputs.image_cache), as the values hand it to the hub.
    stack_cache = values["custom"]["imageCache"]
    assert set(stack_cache) == {"docker.io", "quay.io", "ghcr.io"}
    deployed = values["singleuser"]["profileList"]
    prefixes = tuple(f"{prefix}/" for prefix in stack_cache.values())
    assert menu_images(deployed) and all(i.startswith(prefixes) for i in menu_images(deployed))
    # The same menu by its upstream names, and through another cache.
    upstream = [original_image(i, stack_cache) for i in menu_images(deployed)]
    assert all(i.startswith("quay.io/") for i in upstream)
    assert cached_profile_list(deployed, {}) is deployed  # an empty mapping changes nothing
    as_upstream = [
        {
            **profile,
            "profile_options": {
                **profile["profile_options"],
                "image": {
                    **profile["profile_options"]["image"],
                    "choices": {
                        key: {
                            **choice,
                            "kubespawner_override": {
                                **choice["kubespawner_override"],
                                "image": original_image(
                                    choice["kubespawner_override"]["image"], stack_cache
                                ),
                            },
                        }
                        for key, choice in profile["profile_options"]["image"]["choices"].items()
                    },
                },
            },
        }
        for profile in deployed
    ]
    cached = cached_profile_list(as_upstream, CACHE)
    assert menu_images(cached) == [cached_image(i, CACHE) for i in upstream]
    assert all(image.startswith(f"{GAR}/") for image in menu_images(cached))
    # The user's own image stays a template KubeSpawner fills; the hook rewrites the result.
    for profile in cached:
        unlisted = profile["profile_options"]["image"]["unlisted_choice"]
        assert unlisted["kubespawner_override"] == {"image": "{value}"}
    assert menu_images(as_upstream) == upstream  # the input is not changed


def test_without_a_cache_the_values_are_unchanged(staging: Run) -> None:
    values = release(staging, "gcp", "jupyterhub")["values"]
    assert jupyterhub_image_cache(values, {}) == values
    assert gateway_settings_image_cache({}) == gateway_extra_config_image_cache({}) == {}


def cached_values(run: Run, cloud: str, cache: dict[str, str]) -> dict[str, Any]:
    """The release's values as jupyterhub_values returns them once wired to the cache."""
    return jupyterhub_image_cache(release(run, cloud, "jupyterhub")["values"], cache)


@pytest.mark.usefixtures("chart_files")
def test_the_chart_accepts_and_carries_the_cache(staging: Run) -> None:
    values = cached_values(staging, "gcp", CACHE)
    validate_values(JUPYTERHUB, values)
    assert values["hub"]["extraConfig"][HUB_ENTRY] == source("image_cache")
    assert values["singleuser"]["image"]["name"].startswith(f"{GAR}/staging-quay/")
    for image in values["prePuller"]["extraImages"].values():
        assert image["name"].startswith(f"{GAR}/staging-quay/"), image
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    seen = yaml.safe_load(
        base64.b64decode(find(objects, "Secret", "hub")[0]["data"]["values.yaml"])
    )
    assert seen["custom"]["imageCache"] == CACHE
    # The continuous pre-puller warms the names the pods will pull.
    puller = find(objects, "DaemonSet", "continuous-image-puller")[0]
    pulled = {c["image"] for c in puller["spec"]["template"]["spec"]["initContainers"]}
    assert (
        cached_image(
            values["singleuser"]["profileList"][0]["profile_options"]["image"]["choices"]["pangeo"][
                "kubespawner_override"
            ]["image"],
            CACHE,
        )
        in pulled
    )


def spawn_manifests(
    values: dict[str, Any], requests: list[dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> list[dict[str, Any]]:
    """Load the rendered chart's jupyterhub_config.py, then for each request of user options
    let KubeSpawner apply the profile and build the pod, and run the pod hook on it as
    KubeSpawner's `_start` does (`pod = await self.get_pod_manifest()`, then
    `self.modify_pod_hook(self, pod)`)."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    config = hub_config(objects, tmp_path, "binder", monkeypatch)

    async def build() -> list[dict[str, Any]]:
        built = []
        async with ApiClient() as api:
            for options in requests:
                spawner = KubeSpawner(config=config, _mock=True)
                spawner.profile_list = values["singleuser"]["profileList"]
                spawner.user_options = dict(options)
                await spawner.load_user_options()
                manifest = await spawner.get_pod_manifest()
                if spawner.modify_pod_hook:
                    manifest = spawner.modify_pod_hook(spawner, manifest)
                built.append(api.sanitize_for_serialization(manifest))
        return built

    return run_on_own_loop(build())


def own_image(image: str) -> dict[str, str]:
    """The user options of the default profile with an image of one's own (the form's
    unlisted choice, as KubeSpawner 7.0.0 reads it)."""
    return {"profile": "user", "image--unlisted-choice": image}


def image_and_env(manifest: dict[str, Any]) -> tuple[str, dict[str, str]]:
    container = manifest["spec"]["containers"][0]
    return container["image"], {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.usefixtures("chart_files")
def test_kubespawner_pods_pull_through_the_cache(
    staging: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = cached_values(staging, "gcp", CACHE)
    manifests = spawn_manifests(
        values,
        [
            own_image(NOTEBOOK),
            own_image("python:3.12"),
            own_image("myregistry.example.org:5000/team/image:v1"),
            own_image(BUILT),
            {"profile": "user"},  # the menu's default image
        ],
        tmp_path,
        monkeypatch,
    )
    expected = [
        (f"{GAR}/staging-quay/pangeo/pangeo-notebook:2026.06.04", NOTEBOOK),
        (f"{GAR}/staging-docker-hub/library/python:3.12", "python:3.12"),
        ("myregistry.example.org:5000/team/image:v1",) * 2,
        (BUILT, BUILT),
    ]
    for manifest, (image, shown) in zip(manifests, expected, strict=False):
        pulled, env = image_and_env(manifest)
        assert pulled == image
        assert env["JUPYTER_IMAGE"] == env["JUPYTER_IMAGE_SPEC"] == shown
    default_menu = values["singleuser"]["profileList"][0]["profile_options"]["image"]["choices"]
    menu_image = next(c for c in default_menu.values() if c["default"])["kubespawner_override"]
    pulled, env = image_and_env(manifests[-1])
    assert pulled == menu_image["image"] and pulled.startswith(f"{GAR}/staging-quay/")
    assert env["JUPYTER_IMAGE_SPEC"] == original_image(pulled, CACHE)
    assert env["JUPYTER_IMAGE_SPEC"].startswith("quay.io/pangeo/")


@pytest.mark.usefixtures("chart_files")
def test_without_a_cache_kubespawner_pods_pull_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_value(stack_config("staging"), "clouds.gcp.imageCache.enabled", False)
    values = release(run_program("staging", config), "gcp", "jupyterhub")["values"]
    assert "imageCache" not in values.get("custom", {})
    assert HUB_ENTRY not in values["hub"]["extraConfig"]
    (manifest,) = spawn_manifests(values, [own_image(NOTEBOOK)], tmp_path, monkeypatch)
    assert image_and_env(manifest)[0] == NOTEBOOK


# --- the gateway ---------------------------------------------------------------------------


@pytest.fixture
def cached_settings(staging_config: Any) -> dict[str, Any]:
    """The handler settings once gateway_settings carries the cache piece."""
    gcp = staging_config.clouds.gcp
    dask_pool = next(p for p in gcp.node_pools.values() if p.purpose == "dask")
    settings = dask_values.gateway_settings(context(), staging_config.hub, dask_pool)
    return settings | gateway_settings_image_cache(CACHE)


@pytest.fixture(name="staging_config")
def staging_config_fixture() -> Any:
    return staging_config()


@pytest.fixture
def cluster_config_class(request: pytest.FixtureRequest) -> type:
    """test_hub_incluster's `kube_cluster_config`: the gateway's KubeClusterConfig."""
    return request.getfixturevalue("kube_cluster_config")


def test_gateway_workers_pull_the_notebook_image_through_the_cache(
    cached_settings: dict[str, Any], cluster_config_class: type
) -> None:
    from dask_gateway_server.backends.base import Backend
    from dask_gateway_server.models import User

    backend = Backend(
        cluster_options=gateway_options.make_cluster_options(cached_settings, cached_image),
        cluster_config_class=cluster_config_class,
    )
    # What the notebook's client sends: its JUPYTER_IMAGE_SPEC, the upstream name.
    _, config = process(backend, User("bob"), {"image": NOTEBOOK})
    assert config.image == f"{GAR}/staging-quay/pangeo/pangeo-notebook:2026.06.04"
    _, config = process(backend, User("bob"), {"image": "python:3.12"})
    assert config.image == f"{GAR}/staging-docker-hub/library/python:3.12"
    _, config = process(backend, User("bob"), {"image": BUILT})
    assert config.image == BUILT
    _, config = process(backend, User("bob"), {})
    assert config.image == cached_image(cached_settings["defaultImage"], CACHE)
    assert config.image.startswith(f"{GAR}/")


def test_a_cache_without_the_rewrite_is_refused(cached_settings: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="image_cache"):
        gateway_options.make_cluster_options(cached_settings)


def test_gateway_entries_run_in_order_with_the_cache(
    staging_config: Any, cached_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """dask_values wired as the report says: the settings piece in gateway_settings and the
    extraConfig piece beside 10-options; the chart appends every entry in key order."""
    original = dask_values.gateway_settings
    monkeypatch.setattr(
        dask_values,
        "gateway_settings",
        lambda *a: original(*a) | gateway_settings_image_cache(CACHE),
    )
    gcp = staging_config.clouds.gcp
    values = dask_values.dask_gateway_values(context(), staging_config.hub, gcp.node_pools)
    extra = values["gateway"]["extraConfig"] | gateway_extra_config_image_cache(CACHE)
    assert sorted(extra) == ["00-settings", GATEWAY_ENTRY, "10-options"]
    text = "import os\nimport json\nimport sys\n\n" + "\n".join(extra[k] for k in sorted(extra))
    c = types.SimpleNamespace(Backend=types.SimpleNamespace())
    namespace: dict[str, Any] = {"c": c}
    exec(compile(text, "dask_gateway_config.py", "exec"), namespace)
    assert namespace["PANGEO_BINDER_DASK"]["imageCache"] == CACHE
    bob = GatewayUser("bob")
    options = c.Backend.cluster_options(bob)
    size = cached_settings["workerSizes"][0]["name"]
    overrides = options.get_configuration({"worker_size": size, "image": NOTEBOOK}, bob)
    assert overrides["image"] == cached_image(NOTEBOOK, CACHE)
    assert overrides["environment"]["SCRATCH_BUCKET"].endswith("/bob")  # the rest still works
