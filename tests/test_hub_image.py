"""The hub image: images/hub (Dockerfile and hashed requirements) in step with the chart pin,
built and pushed by the real program on both clouds and both stacks (platform, registry,
credentials from the cloud, tag under the registry's prefix, cache in the registry, no build on
preview), referenced by digest in values z2jh renders to a valid image, and not built at all
when `hub.hubImage` names a prebuilt one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from chart_render import find, render
from conftest import release
from harness import (
    AWS_ACCOUNT,
    ROOT,
    Registration,
    Run,
    run_function,
    run_program,
    stack_config,
    with_value,
)
from pangeo_binder.charts import JUPYTERHUB
from pangeo_binder.hub.hub_image import context_tag, hub_image_values, pushed_ref
from pangeo_binder.testing import ECR_PASSWORD, GCP_ACCESS_TOKEN

IMAGE = "docker-build:index:Image"
CONTEXT = ROOT / "images" / "hub"
DIGEST = "sha256:" + "0123456789abcdef" * 4
# The reference grammar of distribution/reference (reference.go), written out independently of
# the code under test: [domain[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$"
)


def requirement_lines(text: str) -> list[str]:
    """requirements.txt as logical lines: comments dropped, continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuations joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


# --- images/hub --------------------------------------------------------------------------------


def test_the_dockerfile_starts_from_the_charts_own_hub_image() -> None:
    steps = instructions((CONTEXT / "Dockerfile").read_text())
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert froms == [f"quay.io/jupyterhub/k8s-hub:{JUPYTERHUB.version}"]
    assert JUPYTERHUB.name == "jupyterhub"


def test_the_dockerfile_installs_exactly_the_hashed_requirements_as_root_then_drops_back() -> None:
    steps = instructions((CONTEXT / "Dockerfile").read_text())
    copies = [args.split() for keyword, args in steps if keyword == "COPY"]
    assert copies == [["requirements.txt", "/tmp/hub-requirements.txt"]]
    runs = [args for keyword, args in steps if keyword == "RUN"]
    pip = [r for r in runs if "pip install" in r]
    assert len(pip) == 1 and len(runs) == 1
    words = pip[0].split("&&")[0].split()
    assert words[:2] == ["pip", "install"]
    assert {"--no-cache-dir", "--require-hashes"} <= set(words)
    assert words[words.index("-r") + 1] == "/tmp/hub-requirements.txt"
    # Nothing else is installed: every other word is an option.
    assert [w for w in words[2:] if not w.startswith("-")] == ["/tmp/hub-requirements.txt"]
    # The install runs as root (site-packages of /usr/local), the image ends as k8s-hub's user.
    users = [(i, args) for i, (keyword, args) in enumerate(steps) if keyword == "USER"]
    install = steps.index(("RUN", runs[0]))
    assert [u for _, u in users] == ["root", "jovyan"]
    assert users[0][0] < install < users[1][0] == len(steps) - 1


def requirement_problems(text: str) -> list[str]:
    """Lines of a requirements file that are not `name==version` with only sha256 hashes."""
    problems = []
    for line in requirement_lines(text):
        requirement, *options = line.split()
        hashes = [o for o in options if re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", o)]
        pinned = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+", requirement)
        if not (pinned and hashes and options == hashes):
            problems.append(line)
    return problems


def test_every_requirement_is_pinned_with_a_hash() -> None:
    text = (CONTEXT / "requirements.txt").read_text()
    assert requirement_problems(text) == []
    assert [line.split("==")[0] for line in requirement_lines(text)] == [
        "jupyterhub-fancy-profiles"
    ]


def test_the_requirement_check_refuses_unpinned_unhashed_and_mixed_lines() -> None:
    good = "a==1.0 \\\n    --hash=sha256:" + "a" * 64
    assert requirement_problems(good) == []
    for bad in (
        "a>=1.0 --hash=sha256:" + "a" * 64,
        "a==1.0",
        "a==1.0 --hash=md5:" + "a" * 32,
        "a==1.0 --hash=sha256:" + "a" * 64 + " --no-binary=:all:",
    ):
        assert requirement_problems(bad) == [bad], bad


def test_the_tag_follows_the_context_content(tmp_path: Path) -> None:
    copy = tmp_path / "hub"
    shutil.copytree(CONTEXT, copy)
    assert context_tag(copy) == context_tag(CONTEXT)
    assert re.fullmatch(r"[0-9a-f]{16}", context_tag(copy))
    requirements = copy / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# a comment is a change too\n")
    changed = context_tag(copy)
    assert changed != context_tag(CONTEXT)
    (copy / "notes.txt").write_text("")
    assert context_tag(copy) != changed


# --- the build, as the program registers it ---------------------------------------------------


def image_of(run: Run, cloud: str) -> Registration:
    return run.one(IMAGE, f"{cloud}-hub-image-build")


def outputs(run: Run, cloud: str) -> dict[str, Any]:
    return run.stack_outputs[cloud]


def test_the_hub_image_is_built_for_amd64_from_images_hub_and_pushed(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    image = image_of(run, cloud)
    inputs = image.inputs
    # Relative to the directory Pulumi runs the program in (here the checkout, as in `pulumi up`).
    assert inputs["context"] == {"location": "images/hub"}
    assert (Path.cwd() / inputs["context"]["location"]).resolve() == CONTEXT
    assert inputs["dockerfile"] == {"location": "images/hub/Dockerfile"}
    assert inputs["platforms"] == ["linux/amd64"]
    assert inputs["push"] is True
    assert inputs["buildOnPreview"] is False
    assert not inputs.get("load") and not inputs.get("exports")


def test_the_image_is_tagged_under_the_stacks_registry_prefix(case: tuple[Run, str]) -> None:
    run, cloud = case
    prefix = outputs(run, cloud)["imagePrefix"]
    assert prefix.endswith("/")
    assert image_of(run, cloud).inputs["tags"] == [f"{prefix}hub:{context_tag(CONTEXT)}"]


def test_the_build_cache_lives_in_the_registry_beside_the_image(case: tuple[Run, str]) -> None:
    run, cloud = case
    cache = f"{outputs(run, cloud)['imagePrefix']}hub:buildcache"
    inputs = image_of(run, cloud).inputs
    assert inputs["cacheFrom"] == [{"registry": {"ref": cache}}]
    (cache_to,) = inputs["cacheTo"]
    registry = cache_to["registry"]
    assert registry["ref"] == cache
    assert registry["mode"] == "max"
    # ECR accepts BuildKit's cache only as an OCI image manifest.
    assert registry["imageManifest"] is True and registry["ociMediaTypes"] is True
    assert registry["ignoreError"] is False


def test_the_push_logs_in_with_the_clouds_short_lived_credentials(case: tuple[Run, str]) -> None:
    run, cloud = case
    image = image_of(run, cloud)
    (login,) = image.inputs["registries"]
    assert login["address"] == outputs(run, cloud)["registry"]
    assert "registries" in image.secret_inputs
    expected = {
        "gcp": ("oauth2accesstoken", GCP_ACCESS_TOKEN),
        "aws": ("AWS", ECR_PASSWORD),
    }[cloud]
    assert (login["username"], login["password"]) == expected
    token = {
        "gcp": "gcp:organizations/getClientConfig:getClientConfig",
        "aws": "aws:ecr/getAuthorizationToken:getAuthorizationToken",
    }[cloud]
    (call,) = [c for c in run.calls if c.token == token]
    provider = run.one(f"pulumi:providers:{cloud}", f"{cloud}-provider")
    assert call.provider.rsplit("::", 1)[0] == provider.urn
    if cloud == "aws":
        assert call.args["registryId"] == AWS_ACCOUNT


def test_no_registry_password_reaches_config_or_outputs(case: tuple[Run, str]) -> None:
    run, cloud = case
    secret = {"gcp": GCP_ACCESS_TOKEN, "aws": ECR_PASSWORD}[cloud]
    assert secret not in repr(run.stack_outputs)
    holders = [r.name for r in run.registrations if secret in repr(r.inputs)]
    assert holders == [f"{cloud}-hub-image-build"]


def test_the_image_waits_for_its_registry(case: tuple[Run, str]) -> None:
    """The push needs the repository (GCP) or the creation template that lets ECR create it."""
    run, cloud = case
    # The build registry's, not the image caches' (also repositories and templates).
    dependency, name = {
        "gcp": ("gcp:artifactregistry/repository:Repository", "gcp-registry-repository"),
        "aws": (
            "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
            "aws-registry-template",
        ),
    }[cloud]
    registry = run.one(dependency, name)
    assert registry.urn in image_of(run, cloud).dependencies


def test_the_build_runs_under_its_own_explicit_provider_inside_the_hub(
    case: tuple[Run, str],
) -> None:
    run, cloud = case
    image = image_of(run, cloud)
    provider = run.one("pulumi:providers:docker-build", f"{cloud}-hub-image-docker-build")
    assert image.provider_urn == provider.urn
    component = run.by_urn(image.parent)
    assert component.type == "pangeo-binder:hub:HubImage"
    assert run.by_urn(component.parent).type == "pangeo-binder:hub:Hub"


def test_the_hub_image_ref_is_the_pushed_digest(staging: Run) -> None:
    image = image_of(staging, "gcp")
    tag = image.inputs["tags"][0]
    assert image.outputs["ref"] == f"{tag}@{image.outputs['digest']}"
    assert REFERENCE.match(image.outputs["ref"])


def test_the_hub_values_take_the_image_from_the_builds_output(case: tuple[Run, str]) -> None:
    """On both clouds and stacks the jupyterhub release runs the image this stack built, by
    the digest the push reported: nothing else is spliced into the values."""
    run, cloud = case
    ref = image_of(run, cloud).outputs["ref"]
    values = release(run, cloud, "jupyterhub")["values"]
    assert values["hub"]["image"] == hub_image_values(ref)
    assert f"{values['hub']['image']['name']}:{values['hub']['image']['tag']}" == ref


def test_a_prebuilt_hub_image_is_used_as_it_is_and_nothing_is_built() -> None:
    prebuilt = "quay.io/example/k8s-hub-fancy:4.4.0-0.7.0"
    run = run_program("staging", with_value(stack_config("staging"), "hub.hubImage", prebuilt))
    assert run.of_type(IMAGE) == []
    assert run.of_type("pulumi:providers:docker-build") == []
    assert run.of_type("pangeo-binder:hub:HubImage") == []
    assert release(run, "gcp", "jupyterhub")["values"]["hub"]["image"] == {
        "name": "quay.io/example/k8s-hub-fancy",
        "tag": "4.4.0-0.7.0",
    }


def test_a_hub_given_no_context_builds_nothing() -> None:
    """An adopter's program with its own image pipeline passes no context: no build, and
    `Hub.hub_image_ref` is None; given one, the ref is the built image's."""
    from pangeo_binder.config import load_config
    from pangeo_binder.gcp.stack import GcpStack
    from pangeo_binder.hub.hub import Hub

    config = load_config(stack_config("staging"), secret_keys=("secrets",))
    gcp = config.clouds.gcp
    assert gcp is not None
    refs: dict[str, Any] = {}

    def program(context: str | None) -> None:
        stack = GcpStack(
            "gcp",
            gcp,
            deployment="pangeo-binder-staging",
            environment="staging",
            service_accounts=config.hub.workload_service_accounts(),
        )
        hub = Hub(
            "gcp-hub",
            stack.outputs,
            pools=gcp.node_pools,
            settings=config.hub,
            cloud_hub=gcp.hub,
            github_client_secret=pulumi.Output.secret("not-a-secret"),
            hub_image_context=context,
        )
        refs[str(context)] = hub.hub_image_ref
        if hub.hub_image_ref is not None:
            pulumi.export("ref", hub.hub_image_ref)

    without = run_function(lambda: program(None))
    assert refs["None"] is None
    assert without.of_type(IMAGE) == []
    built = run_function(lambda: program("images/hub"))
    assert built.stack_outputs["ref"] == image_of(built, "gcp").outputs["ref"]


# --- the values --------------------------------------------------------------------------------


def test_hub_image_values_put_the_digest_where_the_chart_renders_it() -> None:
    repo = "us-central1-docker.pkg.dev/p/pangeo-binder-staging-images/hub"
    assert hub_image_values(f"{repo}:abc123@{DIGEST}") == {"name": repo, "tag": f"abc123@{DIGEST}"}
    assert hub_image_values(f"{repo}@{DIGEST}") == {
        "name": f"{repo}@sha256",
        "tag": DIGEST.removeprefix("sha256:"),
    }
    port = f"registry.example.org:5000/team/hub:4.4.0@{DIGEST}"
    assert hub_image_values(port) == {
        "name": "registry.example.org:5000/team/hub",
        "tag": f"4.4.0@{DIGEST}",
    }


@pytest.mark.parametrize(
    "ref",
    [
        "quay.io/jupyterhub/k8s-hub:4.4.0",  # a moving tag, no digest
        "quay.io/jupyterhub/k8s-hub@sha256:abc",  # a truncated digest
        f"quay.io/jupyterhub/k8s-hub@md5:{'0' * 64}",
        f"quay.io/Jupyterhub/k8s-hub:4.4.0@{DIGEST}",  # upper case in the path
        f"quay.io/jupyterhub/k8s-hub:-bad@{DIGEST}",
        "",
    ],
)
def test_hub_image_values_refuse_references_not_pinned_by_a_valid_digest(ref: str) -> None:
    with pytest.raises(ValueError):
        hub_image_values(ref)


def rendered_hub_image(run: Run, cloud: str, image_values: dict[str, str]) -> str:
    values = release(run, cloud, "jupyterhub")["values"]
    values["hub"]["image"] = image_values
    objects = render(JUPYTERHUB, values, release="jupyterhub", namespace="binder")
    (hub,) = find(objects, "Deployment", "hub")
    (container,) = [c for c in hub["spec"]["template"]["spec"]["containers"] if c["name"] == "hub"]
    return container["image"]


@pytest.mark.usefixtures("chart_files")
@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_built_ref_renders_as_the_hub_deployments_image(staging: Run, cloud: str) -> None:
    """From the build's ref through `hub_image_values` and the real chart to the Deployment:
    the image string is the pushed reference itself, valid and pinned by digest."""
    ref = image_of(staging, cloud).outputs["ref"]
    image = rendered_hub_image(staging, cloud, hub_image_values(ref))
    assert image == ref
    assert REFERENCE.match(image)
    repo = ref.split("@")[0]
    digest_only = rendered_hub_image(
        staging, cloud, hub_image_values(f"{repo.rsplit(':', 1)[0]}@{DIGEST}")
    )
    assert digest_only == f"{repo.rsplit(':', 1)[0]}@{DIGEST}"
    assert REFERENCE.match(digest_only)


# --- no digest: unknown in a preview, an error in an update ------------------------------------


def test_a_pushed_ref_needs_its_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = f"example.org/hub:abc@{DIGEST}"
    for preview in (False, True):
        monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda p=preview: p)
        assert pushed_ref(ref, DIGEST) == ref
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    with pytest.raises(ValueError, match="no pushed digest"):
        pushed_ref("example.org/hub:abc", "")
    # A digest of another image is no better than none.
    with pytest.raises(ValueError, match="no pushed digest"):
        pushed_ref(ref, "sha256:" + "f" * 64)


def test_a_preview_that_skips_the_build_leaves_the_ref_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: True)
    result = pushed_ref("example.org/hub:abc", "")
    assert isinstance(result, pulumi.Output)
    assert _sync_await(result.is_known()) is False
