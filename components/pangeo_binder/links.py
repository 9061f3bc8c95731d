"""Launch links for a GitHub repository on a stack's hub: build it, pull it, or badge it.

`python -m pangeo_binder.links --stack staging --cloud gcp --repo OWNER/NAME --ref REF
[--profile SLUG] [--path FILE] [--no-auto-start] [--format text|json] [--root DIR]` prints:

- build: the spawn form with the repository and ref filled in for "build your own image"
  (jupyterhub-fancy-profiles' permalink), on a named profile, building and starting by itself
  unless `--no-auto-start`;
- pull: nbgitpuller's link, which clones or updates the repository in the user's server and
  opens a file (or the repository's folder) in JupyterLab;
- badge: Markdown for a README, a badge image that opens the build link.

The stack file is read and validated as `pulumi up` would (secure values replaced by a
placeholder, never decrypted), and `--profile` is checked against the profiles the stack
really generates (`profile_list`). `--update-docs` rewrites the generated example in
`docs/user-guide.md`.

Upstream facts, read from the sources of the versions we run:

- jupyterhub-fancy-profiles 0.7.0 (the wheel pinned in `images/hub/requirements.txt`, its
  `static/dist/form.js` and the sources in `form.js.map`): `src/context/Permalink.tsx` reads
  `new URLSearchParams(location.hash).get("fancy-forms-config")` and `JSON.parse`s it into a
  flat map of strings; its "Copy Permalink" button writes
  `<origin>/hub/login?next=/hub/spawn%23fancy-forms-config=...`. Keys: `profile` (a profile
  slug, `src/state.tsx`), `<option>` and `<option>:...` per profile option
  (`src/ResourceSelect.tsx`, used only when `profile` names the selected profile), for the image
  option `image` = `--extra-selectable-item` (the "Build your own image" choice,
  `src/ProfileOptions.tsx`, offered only for the option keyed `image` with
  `dynamic_image_building` and `unlisted_choice` enabled, `src/utils/index.ts`),
  `image:binderProvider` = `gh`, `image:binderRepo` = `owner/name`, `image:ref`
  (`src/ImageBuilder.tsx`), and `autoStart` = `"true"`, on which the builder builds and then
  submits the form (`src/ImageBuilder.tsx`, `src/ProfileForm.tsx`).
- nbgitpuller 1.3.0 (`nbgitpuller/handlers.py`, `pull.py`): `repo`, `branch` (absent: the
  remote's default branch; otherwise `git clone --branch`, later merges of `origin/<branch>`),
  `urlpath` (the URL to open after the pull, relative to the server's base URL); the clone's
  folder (`targetpath`) defaults to the last segment of `repo`.
- JupyterHub 5.5.0 (`handlers/login.py`, `handlers/base.py`) and OAuthenticator 17.4.0
  (`oauth2.py`) carry `next`, fragment included, through the GitHub login and redirect a user
  who is already logged in straight to it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from pangeo_binder.config import ConfigError, StackConfig, load_config
from pangeo_binder.generated import REFERENCE_STACKS, replace_section
from pangeo_binder.hub.profiles import profile_list
from pangeo_binder.machines import Cloud
from pangeo_binder.plan.runtime import PLACEHOLDER, stack_file_config

CLOUDS: tuple[Cloud, ...] = ("gcp", "aws")
# fancy-profiles 0.7.0: src/context/Permalink.tsx (queryParamName) and the keys it reads.
FORM_CONFIG_PARAM = "fancy-forms-config"
IMAGE_OPTION = "image"  # src/utils/index.ts: only the option keyed "image" offers building
BUILD_CHOICE = "--extra-selectable-item"  # src/ProfileOptions.tsx
GITHUB_PROVIDER = "gh"  # src/ImageBuilder.tsx builds "gh/<owner>/<name>/<ref>"
# The single-user server opens JupyterLab (`singleuser.defaultUrl: /lab` in the hub's values).
PULL_APP = "lab/tree"
# The standard Binder badge, public, so a README on GitHub can show it.
BADGE_IMAGE = "https://mybinder.org/badge_logo.svg"

# GitHub: owners are 1-39 ASCII letters, digits or single inner hyphens; repositories 1-100
# ASCII letters, digits, `.`, `-`, `_`, not `.`/`..` and not ending in `.git`.
OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# A full commit id (SHA-1 or SHA-256): BinderHub builds it, nbgitpuller cannot pull it.
COMMIT_ID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})")
HEAD = "HEAD"  # fancy-profiles' default ref: the repository's default branch


class LinkError(ValueError):
    """Every problem with the request, reported together."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"  - {problem}" for problem in problems))


@dataclass(frozen=True)
class Repository:
    """A GitHub repository, `owner/name`."""

    owner: str
    name: str

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"


def repository_problems(text: str) -> list[str]:
    """Why `text` is not a GitHub `owner/name` (empty when it is)."""
    parts = text.split("/")
    if len(parts) != 2:
        return [f"--repo {text!r}: give the repository as owner/name, e.g. pangeo-data/pangeo"]
    owner, name = parts
    problems = []
    if not OWNER.fullmatch(owner):
        problems.append(
            f"--repo {text!r}: owner {owner!r} is not a GitHub name (1-39 letters, digits or "
            "single hyphens, not at either end)"
        )
    if not REPO_NAME.fullmatch(name) or name in (".", ".."):
        problems.append(
            f"--repo {text!r}: name {name!r} is not a GitHub repository name (1-100 letters, "
            "digits, '.', '-' or '_')"
        )
    elif name.lower().endswith(".git"):
        problems.append(f"--repo {text!r}: drop the '.git' from the name")
    return problems


def parse_repository(text: str) -> Repository:
    """`owner/name` as a Repository; LinkError if GitHub would not accept it."""
    problems = repository_problems(text)
    if problems:
        raise LinkError(problems)
    owner, name = text.split("/")
    return Repository(owner, name)


def ref_problems(ref: str) -> list[str]:
    """Why git would refuse `ref` as a branch or tag name (git check-ref-format's rules)."""
    if not ref:
        return ["--ref is empty: give a branch, tag or commit (HEAD: the default branch)"]
    reasons = []
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ref):
        reasons.append("has control characters")
    if " " in ref:
        reasons.append("has spaces")
    bad = sorted({c for c in ref if c in "~^:?*[\\"})
    if bad:
        reasons.append("has " + " ".join(repr(c) for c in bad))
    if ".." in ref:
        reasons.append("has '..'")
    if "@{" in ref or ref == "@":
        reasons.append("has '@{' or is '@'")
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        reasons.append("has an empty '/' component")
    if ref.endswith("."):
        reasons.append("ends with '.'")
    components = ref.split("/")
    if any(part.startswith(".") for part in components):
        reasons.append("has a component starting with '.'")
    if any(part.endswith(".lock") for part in components):
        reasons.append("has a component ending with '.lock'")
    return [f"--ref {ref!r} is not a git ref: it {', '.join(reasons)}"] if reasons else []


def path_problems(path: str) -> list[str]:
    """Why `path` is not a file path inside the repository."""
    parts = path.split("/")
    if path.startswith("/") or "" in parts or any(p in (".", "..") for p in parts):
        return [f"--path {path!r}: give a path inside the repository, like notebooks/intro.ipynb"]
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return [f"--path {path!r} has control characters"]
    return []


def form_config(
    profile: str, repository: Repository, ref: str, *, auto_start: bool
) -> dict[str, str]:
    """What the spawn form reads from its permalink (fancy-profiles 0.7.0's keys, all strings):
    the profile, "build your own image" as the image choice, the repository and the ref."""
    return {
        "profile": profile,
        IMAGE_OPTION: BUILD_CHOICE,
        f"{IMAGE_OPTION}:binderProvider": GITHUB_PROVIDER,
        f"{IMAGE_OPTION}:binderRepo": repository.slug,
        f"{IMAGE_OPTION}:ref": ref,
        "autoStart": "true" if auto_start else "false",
    }


def build_url(
    domain: str, profile: str, repository: Repository, ref: str, *, auto_start: bool = True
) -> str:
    """The hub's login with `next` = the spawn form plus its permalink fragment.

    The login, not `/hub/spawn#...` itself: a fragment never reaches the server, so a user who
    is not logged in would be sent to the login page and lose it there. fancy-profiles' own
    "Copy Permalink" uses the same shape; here the whole `next` is percent-encoded, so a ref
    with `&`, `+` or `%` survives the hub decoding `next` once."""
    config = json.dumps(
        form_config(profile, repository, ref, auto_start=auto_start),
        separators=(",", ":"),
        ensure_ascii=False,
    )
    fragment = f"{FORM_CONFIG_PARAM}={quote_plus(config)}"  # as URLSearchParams encodes
    return f"https://{domain}/hub/login?" + urlencode({"next": f"/hub/spawn#{fragment}"})


def pull_url(domain: str, repository: Repository, ref: str, path: str | None = None) -> str:
    """nbgitpuller through the hub: clone or update the repository in the user's server (into
    the folder named after it), then open `path` in JupyterLab (the folder when None)."""
    segments = [repository.name, *(PurePosixPath(path).parts if path else ())]
    # each segment escaped: a '#' or '?' in a file name must not end the path
    urlpath = f"{PULL_APP}/" + "/".join(quote(segment, safe="") for segment in segments)
    query = {"repo": repository.url}
    if ref != HEAD:  # no branch: nbgitpuller takes the remote's default branch
        query["branch"] = ref
    query["urlpath"] = urlpath
    return f"https://{domain}/hub/user-redirect/git-pull?" + urlencode(query, quote_via=quote)


def badge(build: str, domain: str) -> str:
    """README Markdown: the Binder badge, linking to the build link."""
    return f"[![Build and launch on {domain}]({BADGE_IMAGE})]({build})"


def stack_config(root: Path, stack: str) -> StackConfig:
    """`Pulumi.<stack>.yaml` of `root`, validated by `load_config` as `pulumi up` would.

    Secure values are replaced by a placeholder (nothing is decrypted), and a cloud's GitHub
    client secret, which the stack file normally does not hold, gets the placeholder too:
    only the plain settings matter for links."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        found = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise LinkError(
            [f"--stack {stack!r}: no {path.name} in {root}; stacks there: {', '.join(found)}"]
        )
    config, secret_keys, _ = stack_file_config(path)
    clouds = config.get("clouds") if isinstance(config.get("clouds"), dict) else {}
    if "secrets" not in config or "secrets" in secret_keys:
        secrets = config.setdefault("secrets", {})
        if isinstance(secrets, dict):
            for cloud in clouds:
                entry = secrets.setdefault(cloud, {})
                if isinstance(entry, dict):
                    entry.setdefault("githubClientSecret", PLACEHOLDER)
        secret_keys = sorted({*secret_keys, "secrets"})
    return load_config(config, secret_keys=secret_keys)


def configured_clouds(config: StackConfig) -> list[Cloud]:
    return [cloud for cloud in CLOUDS if getattr(config.clouds, cloud) is not None]


def stack_profiles(config: StackConfig, cloud: Cloud) -> list[dict[str, Any]]:
    """The spawn form's profiles of `cloud`, exactly as the hub's values carry them."""
    settings = getattr(config.clouds, cloud)
    return profile_list(cloud, dict(settings.node_pools), config.hub, settings.hub)


def builds_images(profile: dict[str, Any]) -> bool:
    """fancy-profiles' test (src/utils/index.ts): the `image` option offers building."""
    option = profile.get("profile_options", {}).get(IMAGE_OPTION, {})
    return bool(
        option.get("dynamic_image_building", {}).get("enabled")
        and option.get("unlisted_choice", {}).get("enabled")
    )


def default_profile(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's default (src/state.tsx): the first marked default, else the first."""
    return next((p for p in profiles if p.get("default") is True), profiles[0])


def profile_problems(profiles: list[dict[str, Any]], slug: str | None, cloud: str) -> list[str]:
    """Why the build link cannot name `slug` (None: the default profile) on this cloud."""
    # profile_list always sets `slug`; KubeSpawner would otherwise derive one from the name
    slugs = [str(profile["slug"]) for profile in profiles]
    if slug is not None and slug not in slugs:
        return [f"--profile {slug!r}: {cloud} has no such profile; it has: {', '.join(slugs)}"]
    chosen = default_profile(profiles) if slug is None else profiles[slugs.index(slug)]
    if not builds_images(chosen):
        building = [str(p["slug"]) for p in profiles if builds_images(p)]
        return [
            f"profile {chosen['slug']!r} on {cloud} does not offer building from a repository "
            f"(hub.binder.enabled false?); profiles that do: {', '.join(building) or 'none'}"
        ]
    return []


@dataclass(frozen=True)
class Request:
    """What the command was asked for."""

    stack: str
    cloud: str
    repo: str
    ref: str
    profile: str | None = None
    path: str | None = None
    auto_start: bool = True


def links(config: StackConfig, request: Request) -> tuple[dict[str, str], list[str]]:
    """The three links and notes for the user, or LinkError naming every problem at once."""
    problems = repository_problems(request.repo) + ref_problems(request.ref)
    if COMMIT_ID.fullmatch(request.ref):
        problems.append(
            f"--ref {request.ref!r} is a commit: BinderHub builds it, but nbgitpuller pulls only "
            "a branch (git clone --branch, then merges of origin/<branch>); give a branch"
        )
    if request.path is not None:
        problems += path_problems(request.path)
    clouds = configured_clouds(config)
    profiles: list[dict[str, Any]] = []
    if request.cloud not in clouds:
        problems.append(
            f"--cloud {request.cloud!r}: stack {request.stack!r} has no such cloud; "
            f"it has: {', '.join(clouds)}"
        )
    else:
        profiles = stack_profiles(config, request.cloud)  # type: ignore[arg-type]
        problems += profile_problems(profiles, request.profile, request.cloud)
    if problems:
        raise LinkError(problems)
    settings = getattr(config.clouds, request.cloud)
    domain = settings.hub.domain
    repository = parse_repository(request.repo)
    named = [p for p in profiles if p["slug"] == request.profile]
    chosen = named[0] if named else default_profile(profiles)
    build = build_url(
        domain, chosen["slug"], repository, request.ref, auto_start=request.auto_start
    )
    notes = []
    if chosen.get("allowed_groups") is not None:
        groups = ", ".join(chosen["allowed_groups"]) or "admins only"
        notes.append(f"profile {chosen['slug']!r} is only for: {groups} (and admins)")
    if not request.auto_start:
        notes.append("the build link fills in the form; the user presses the build button")
    return {
        "build": build,
        "pull": pull_url(domain, repository, request.ref, request.path),
        "badge": badge(build, domain),
    }, notes


def render(result: dict[str, str], fmt: str) -> str:
    """JSON (`{"build", "pull", "badge"}`) or the three, labelled."""
    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    labels = {
        "build": "build (log in, build the repository, start a server on it)",
        "pull": "pull (nbgitpuller: clone or update it in your server, open the file)",
        "badge": "badge (Markdown for the repository's README; opens the build link)",
    }
    return "".join(f"{labels[key]}:\n  {value}\n" for key, value in result.items())


# The example docs/user-guide.md shows, regenerated by `--update-docs` and checked by a test.
EXAMPLE = [
    "--stack", "staging", "--cloud", "gcp", "--repo", "pangeo-data/pangeo-tutorial",
    "--ref", "main", "--path", "README.md",
]  # fmt: skip
GUIDE = Path("docs") / "user-guide.md"
BEGIN = "<!-- generated by `python -m pangeo_binder.links --update-docs`: do not edit below -->"
END = "<!-- end of generated links example -->"


def example_section(root: Path) -> str:
    """The user guide's example: the command and what it prints for the reference staging
    (`generated.REFERENCE_STACKS`, whatever stack files the checkout `root` holds)."""
    args = parser().parse_args(EXAMPLE)
    result, _ = links(stack_config(root / REFERENCE_STACKS, args.stack), request_from(args))
    command = "python -m pangeo_binder.links " + " ".join(EXAMPLE)
    output = render(result, "text").rstrip("\n")
    lines = [BEGIN, "", "```bash", command, "```", "", "```text", output, "```", "", END]
    return "\n".join(lines) + "\n"


def with_section(page: str, section: str) -> str:
    """`page` with the text between the markers replaced by `section`."""
    replaced = replace_section(page, BEGIN, END, section)
    if replaced is None:
        raise LinkError([f"{GUIDE} lacks the generated-section markers"])
    return replaced


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pangeo_binder.links", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", help="reads Pulumi.<stack>.yaml")
    parser.add_argument("--cloud", help="one of the stack's clouds (gcp, aws)")
    parser.add_argument("--repo", help="GitHub repository, owner/name")
    parser.add_argument("--ref", help="branch, tag or commit (HEAD: the default branch)")
    parser.add_argument("--profile", help="profile slug (default: the form's default profile)")
    parser.add_argument("--path", help="file to open after pulling, relative to the repository")
    parser.add_argument(
        "--auto-start",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the build link builds and starts by itself (default); --no-auto-start only "
        "fills in the form",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="folder of the stack file")
    parser.add_argument(
        "--update-docs", action="store_true", help=f"rewrite the example in {GUIDE} and exit"
    )
    return parser


def request_from(args: argparse.Namespace) -> Request:
    return Request(
        stack=args.stack,
        cloud=args.cloud,
        repo=args.repo,
        ref=args.ref,
        profile=args.profile,
        path=args.path,
        auto_start=args.auto_start,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.update_docs:
            page = args.root / GUIDE
            page.write_text(with_section(page.read_text(), example_section(args.root)))
            print(f"wrote {page}", file=sys.stderr)
            return 0
        missing = [
            f"--{name}" for name in ("stack", "cloud", "repo", "ref") if not getattr(args, name)
        ]
        if missing:
            parser().error(f"required: {', '.join(missing)}")
        result, notes = links(stack_config(args.root, args.stack), request_from(args))
    except (LinkError, ConfigError) as error:
        print(f"no links:\n{error}" if isinstance(error, LinkError) else error, file=sys.stderr)
        return 2
    sys.stdout.write(render(result, args.format))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
