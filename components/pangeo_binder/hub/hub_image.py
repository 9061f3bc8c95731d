"""The hub image: the chart's own hub image plus `images/hub/requirements.txt`, built by
`pulumi up` with BuildKit (pulumi-docker-build) and pushed to the stack's own registry.

The hub's values name it by digest (`hub_image_values`), so a change to the Dockerfile or the
requirements is a visible diff of the jupyterhub release, and a revert rolls the hub back to the
image it ran before.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker_build as docker_build

from pangeo_binder.outputs import CloudOutputs, RegistryLogin

# The image's name under the registry's prefix, and the tag its build cache lives at.
IMAGE_NAME = "hub"
CACHE_TAG = "buildcache"
# The nodes are amd64 on both clouds, whatever machine runs `pulumi up`.
PLATFORM = docker_build.Platform.LINUX_AMD64

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A repository: an optional registry host (with port), then lowercase path components.
_REPOSITORY = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


def context_tag(context: Path) -> str:
    """A tag from the content of every file in the build context (paths and bytes): the same
    files give the same tag on any machine, and any change gives a new one."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(path.relative_to(context).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def split_reference(ref: str) -> tuple[str, str, str]:
    """`repo[:tag]@sha256:<hex>` -> (repository, tag or "", digest); ValueError for anything
    that does not pin a digest, since the hub must never follow a moving tag."""
    name, at, digest = ref.rpartition("@")
    if not at or not _DIGEST.match(digest):
        raise ValueError(f"{ref!r}: not a reference pinned by digest (repo[:tag]@sha256:<hex>)")
    repository, tag = name, ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
        if not _TAG.match(tag):
            raise ValueError(f"{ref!r}: {tag!r} is not a valid tag")
    if not _REPOSITORY.match(repository):
        raise ValueError(f"{ref!r}: {repository!r} is not a valid repository name")
    return repository, tag, digest


def hub_image_values(ref: str) -> dict[str, Any]:
    """z2jh's `hub.image` for an image pinned by digest.

    The chart (4.4.0, templates/hub/deployment.yaml) renders `{{ name }}:{{ tag }}` and has no
    digest key, so the digest rides in `tag`: `repo:tag@sha256:<hex>` becomes name `repo`, tag
    `tag@sha256:<hex>`; `repo@sha256:<hex>` becomes name `repo@sha256`, tag `<hex>`. Either way
    the Deployment's image is exactly `ref`, which the kubelet pulls by digest.
    """
    repository, tag, digest = split_reference(ref)
    if tag:
        return {"name": repository, "tag": f"{tag}@{digest}"}
    algorithm, hex_digest = digest.split(":", 1)
    return {"name": f"{repository}@{algorithm}", "tag": hex_digest}


def pushed_ref(ref: str, digest: str) -> pulumi.Output[str] | str:
    """The pushed image's `name:tag@digest`. A preview that skips the build has no digest: the
    reference is then unknown (as it is on a create), never a bare tag."""
    if digest and ref.endswith(f"@{digest}"):
        return ref
    if pulumi.runtime.is_dry_run():
        return pulumi.Output.from_input(pulumi.UNKNOWN)
    raise ValueError(f"the hub image build reported no pushed digest (ref {ref!r})")


def registry_args(login: RegistryLogin) -> docker_build.RegistryArgs:
    """The build logs in with the cloud's short-lived credentials; the password is a secret
    input, kept encrypted in state, and docker-build ignores its changes when diffing."""
    return docker_build.RegistryArgs(
        address=login.address, username=login.username, password=login.password
    )


def cache_args(
    cache_ref: pulumi.Input[str],
) -> tuple[docker_build.CacheFromArgs, docker_build.CacheToArgs]:
    """BuildKit's cache in the registry beside the image, every stage's layers (mode max).
    ECR refuses BuildKit's default cache manifest list: it needs an OCI image manifest
    (imageManifest with ociMediaTypes); Artifact Registry stores either, so both clouds use it."""
    return (
        docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref)),
        docker_build.CacheToArgs(
            registry=docker_build.CacheToRegistryArgs(
                ref=cache_ref,
                mode=docker_build.CacheMode.MAX,
                image_manifest=True,
                oci_media_types=True,
            )
        ),
    )


class HubImage(pulumi.ComponentResource):
    """Builds `context` (a directory with a Dockerfile) for linux/amd64 and pushes it as
    `<image prefix>hub:<content hash>` to the cloud's registry, logged in with
    `cloud.registry_login`; the build cache lives at `<image prefix>hub:buildcache`.

    `context` is recorded in state: give it relative to the program's directory (Pulumi runs
    the program there), so deploys from different checkouts see no change.

    Previews never build (`buildOnPreview: false`): CI's preview identity is read-only and
    docker-build exports the cache even from a preview build; on-disk Dockerfiles are still
    parsed on preview. `ref` is `name:tag@sha256:<digest>`, unknown in a preview that would
    rebuild.
    """

    ref: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cloud: CloudOutputs,
        *,
        context: str | Path,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pangeo-binder:hub:HubImage", name, None, opts)
        location = Path(context)
        if not (location / "Dockerfile").is_file():
            raise ValueError(f"{location}: no Dockerfile in the hub image's build context")
        provider = docker_build.Provider(
            f"{name}-docker-build", opts=pulumi.ResourceOptions(parent=self)
        )
        repository = cloud.image_prefix.apply(lambda prefix: f"{prefix}{IMAGE_NAME}")
        cache_from, cache_to = cache_args(pulumi.Output.concat(repository, ":", CACHE_TAG))
        image = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=location.as_posix()),
            dockerfile=docker_build.DockerfileArgs(location=(location / "Dockerfile").as_posix()),
            platforms=[PLATFORM],
            tags=[pulumi.Output.concat(repository, ":", context_tag(location))],
            push=True,
            registries=[registry_args(cloud.registry_login)],
            cache_from=[cache_from],
            cache_to=[cache_to],
            build_on_preview=False,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.ref = pulumi.Output.all(image.ref, image.digest).apply(lambda v: pushed_ref(*v))
        self.register_outputs({"ref": self.ref})
