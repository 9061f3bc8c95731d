"""Launch links: each link decoded back the way its reader decodes it (the hub and the spawn
form for the build link, nbgitpuller for the pull link), and every bad input refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_to_bytes, urlsplit

import pytest
import yaml

from conftest import release
from harness import ROOT, STACKS, Run
from pangeo_binder import links
from pangeo_binder.hub.profiles import cached_profile_list
from pangeo_binder.links import Repository, Request

DOMAIN = "gcp.staging.pangeo-binder.example.org"
TUTORIAL = Repository("pangeo-data", "pangeo-tutorial")
NODE = shutil.which("node")
GIT = shutil.which("git")


# --- decoding as the readers do ----------------------------------------------------------------


def hub_next(url: str) -> str:
    """The `next` argument as the hub reads it: tornado's `get_argument` decodes the query once
    (`parse_qs_bytes`, i.e. `urllib.parse.parse_qs`)."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", DOMAIN, "/hub/login")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert list(query) == ["next"] and len(query["next"]) == 1
    return query["next"][0]


def url_search_params_get(text: str, name: str) -> str | None:
    """`new URLSearchParams(text).get(name)`: the WHATWG form-urlencoded parser (split on `&`,
    the first `=` splits name from value, `+` is a space, percent-decoding as UTF-8)."""
    for sequence in text.split("&"):
        if not sequence:
            continue
        key, _, value = sequence.partition("=")

        def decode(part: str) -> str:
            return unquote_to_bytes(part.replace("+", " ")).decode("utf-8", "replace")

        if decode(key) == name:
            return decode(value)
    return None


def form_config(url: str) -> dict[str, Any]:
    """What fancy-profiles 0.7.0 (src/context/Permalink.tsx) reads after the hub redirects to
    `next`: `location.hash` without its `#`, `URLSearchParams(...).get("fancy-forms-config")`,
    then `JSON.parse`."""
    next_url = hub_next(url)
    path, _, fragment = next_url.partition("#")
    assert path == "/hub/spawn"
    # a browser leaves these fragment characters as they are (no re-encoding on the way)
    assert re.fullmatch(r"[A-Za-z0-9%+=._~-]*", fragment)
    value = url_search_params_get(fragment, "fancy-forms-config")
    assert value is not None
    config = json.loads(value)
    assert all(isinstance(v, str) for v in config.values())  # the form's map holds strings
    return config


def extract_org_and_repo(value: str) -> str | None:
    """fancy-profiles 0.7.0 src/hooks/useRepositoryField.ts: the permalink's repository is
    accepted as `owner/name` only if this matches."""
    return value if re.fullmatch(r"[^/]+/[^/]+", value) else None


# --- the build link ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["main", "HEAD", "v2026.01.30", "feature/a+b&c%d=e", "ünïcode", "a#b?c"]
)
@pytest.mark.parametrize("auto_start", [True, False])
def test_the_build_link_decodes_to_the_profile_repository_and_ref(
    ref: str, auto_start: bool
) -> None:
    url = links.build_url(DOMAIN, "highmem", TUTORIAL, ref, auto_start=auto_start)
    assert form_config(url) == {
        "profile": "highmem",
        "image": "--extra-selectable-item",
        "image:binderProvider": "gh",
        "image:binderRepo": "pangeo-data/pangeo-tutorial",
        "image:ref": ref,
        "autoStart": "true" if auto_start else "false",
    }
    assert extract_org_and_repo(form_config(url)["image:binderRepo"]) == TUTORIAL.slug


def test_the_build_link_decodes_the_same_in_node(tmp_path: Path) -> None:
    """The browser half with the real URL and URLSearchParams: resolve the hub's redirect
    target and run the form's own three lines on its hash."""
    if NODE is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed to decode the build link (apt-get install nodejs)")
        pytest.skip("node not installed: the build link is decoded in Python only")
    ref = "feature/a+b&c%d=e"
    url = links.build_url(DOMAIN, "user", TUTORIAL, ref)
    script = tmp_path / "decode.js"
    script.write_text(
        "let hash = new URL(process.argv[2], 'https://hub.example').hash;\n"
        "if (hash.startsWith('#')) hash = hash.slice(1);\n"
        "const params = new URLSearchParams(hash);\n"
        "console.log(JSON.stringify(JSON.parse(params.get('fancy-forms-config'))));\n"
    )
    out = subprocess.run(
        [NODE, str(script), hub_next(url)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == form_config(url)
    assert json.loads(out.stdout)["image:ref"] == ref


# --- the pull link -----------------------------------------------------------------------------


def pull_query(url: str) -> dict[str, str]:
    """The pull link's arguments as nbgitpuller's handler reads them (tornado `get_argument`)."""
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        DOMAIN,
        "/hub/user-redirect/git-pull",
    )
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values())
    return {key: values[0] for key, values in query.items()}


def test_the_pull_link_names_repo_branch_and_the_file_in_the_clone() -> None:
    query = pull_query(links.pull_url(DOMAIN, TUTORIAL, "main", "notebooks/intro.ipynb"))
    assert query == {
        "repo": "https://github.com/pangeo-data/pangeo-tutorial",
        "branch": "main",
        "urlpath": "lab/tree/pangeo-tutorial/notebooks/intro.ipynb",
    }
    # nbgitpuller 1.3.0 handlers.py: the clone's folder when no targetpath is given
    target = query["repo"].rstrip("/").split("/")[-1]
    assert query["urlpath"].split("/")[2] == target


def test_the_pull_link_without_a_path_opens_the_clone() -> None:
    query = pull_query(links.pull_url(DOMAIN, TUTORIAL, "main"))
    assert query["urlpath"] == "lab/tree/pangeo-tutorial"


def test_head_leaves_the_branch_to_nbgitpuller() -> None:
    """No `branch`: nbgitpuller resolves the remote's default branch (pull.py)."""
    query = pull_query(links.pull_url(DOMAIN, TUTORIAL, "HEAD", "README.md"))
    assert "branch" not in query
    assert query["repo"] == TUTORIAL.url


def test_a_file_name_with_url_characters_stays_one_path() -> None:
    query = pull_query(links.pull_url(DOMAIN, TUTORIAL, "dev", "a dir/b#1?.ipynb"))
    assert query["branch"] == "dev"
    urlpath = query["urlpath"]
    assert "#" not in urlpath and "?" not in urlpath and " " not in urlpath
    assert [unquote(s) for s in urlpath.split("/")] == [
        "lab",
        "tree",
        "pangeo-tutorial",
        "a dir",
        "b#1?.ipynb",
    ]


# --- the badge ---------------------------------------------------------------------------------


def test_the_badge_opens_the_build_link() -> None:
    build = links.build_url(DOMAIN, "user", TUTORIAL, "main")
    markdown = links.badge(build, DOMAIN)
    match = re.fullmatch(r"\[!\[([^\]]*)\]\(([^)\s]+)\)\]\(([^)\s]+)\)", markdown)
    assert match, markdown
    assert DOMAIN in match.group(1)
    assert match.group(2) == links.BADGE_IMAGE
    assert match.group(3) == build


# --- input rules -------------------------------------------------------------------------------

GOOD_REPOS = ["a/b", "pangeo-data/pangeo-tutorial", "A1/x_y.z-", "o" * 39 + "/" + "n" * 100]
BAD_REPOS = [
    "pangeo-data",
    "a/b/c",
    "https://github.com/a/b",
    "-a/b",
    "a-/b",
    "a--b/c",
    "a_b/c",
    "o" * 40 + "/b",
    "a/" + "n" * 101,
    "a/b.git",
    "a/..",
    "a/b c",
    "a/b\u00e9",
    "/b",
    "a/",
]


@pytest.mark.parametrize("repo", GOOD_REPOS)
def test_github_names_are_accepted(repo: str) -> None:
    assert links.repository_problems(repo) == []
    assert links.parse_repository(repo).slug == repo


@pytest.mark.parametrize("repo", BAD_REPOS)
def test_what_github_would_not_name_is_refused(repo: str) -> None:
    problems = links.repository_problems(repo)
    assert problems and all(f"--repo {repo!r}" in p for p in problems)
    with pytest.raises(links.LinkError):
        links.parse_repository(repo)


REFS = {
    "main": True,
    "HEAD": True,
    "v1.2.3": True,
    "feature/x": True,
    "a+b&c%d": True,
    "ünïcode": True,
    "a@b": True,
    "my branch": False,
    "a..b": False,
    "a~1": False,
    "a^": False,
    "a:b": False,
    "a?": False,
    "a*": False,
    "a[": False,
    "a\\b": False,
    "/a": False,
    "a/": False,
    "a//b": False,
    "a.": False,
    ".a": False,
    "a/.b": False,
    "a.lock": False,
    "a/b.lock/c": False,
    "@": False,
    "a@{1}": False,
    "a\tb": False,
    "a\x7fb": False,
}


@pytest.mark.parametrize("ref", list(REFS))
def test_refs_git_refuses_are_refused(ref: str) -> None:
    problems = links.ref_problems(ref)
    assert (problems == []) is REFS[ref], problems
    if not REFS[ref]:
        assert problems[0].startswith(f"--ref {ref!r} is not a git ref: it ")


@pytest.mark.skipif(GIT is None, reason="git not installed")
@pytest.mark.parametrize("ref", list(REFS))
def test_the_ref_rules_agree_with_git(ref: str) -> None:
    done = subprocess.run(
        [GIT, "check-ref-format", "--allow-onelevel", ref], capture_output=True, check=False
    )
    assert (done.returncode == 0) is REFS[ref]


def test_an_empty_ref_is_refused() -> None:
    assert links.ref_problems("") == [
        "--ref is empty: give a branch, tag or commit (HEAD: the default branch)"
    ]


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/", ""])
def test_paths_outside_the_clone_are_refused(path: str) -> None:
    assert links.path_problems(path)


# --- against the stack files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def staging_config() -> links.StackConfig:
    return links.stack_config(STACKS, "staging")


def request(**changes: Any) -> Request:
    base: dict[str, Any] = {
        "stack": "staging",
        "cloud": "gcp",
        "repo": "pangeo-data/pangeo-tutorial",
        "ref": "main",
    }
    return Request(**{**base, **changes})


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_profiles_are_the_ones_the_hub_is_given(
    staging: Run, staging_config: links.StackConfig, cloud: str
) -> None:
    values = release(staging, cloud, "jupyterhub")["values"]
    deployed = values["singleuser"]["profileList"]
    # The hub's menu names images by their in-region cache (known only once deployed): the
    # links' profiles are the same menu by upstream names.
    ours = links.stack_profiles(staging_config, cloud)  # type: ignore[arg-type]
    assert cached_profile_list(ours, values["custom"]["imageCache"]) == deployed


def test_without_a_profile_the_link_names_the_default_one(
    staging_config: links.StackConfig,
) -> None:
    result, notes = links.links(staging_config, request(path="README.md"))
    profiles = links.stack_profiles(staging_config, "gcp")
    default = [p["slug"] for p in profiles if p.get("default")]
    assert default == ["user"]
    assert form_config(result["build"])["profile"] == "user"
    assert hub_next(result["build"]).startswith("/hub/spawn#")
    assert pull_query(result["pull"])["urlpath"] == "lab/tree/pangeo-tutorial/README.md"
    assert result["badge"].endswith(f"({result['build']})")
    assert notes == []


def test_a_restricted_profile_is_linked_with_a_note(staging_config: links.StackConfig) -> None:
    result, notes = links.links(staging_config, request(profile="gpu", cloud="aws"))
    assert urlsplit(result["build"]).netloc == "aws.staging.pangeo-binder.example.org"
    assert form_config_any(result["build"])["profile"] == "gpu"
    assert notes == ["profile 'gpu' is only for: pangeo-data:gpu-users (and admins)"]


def form_config_any(url: str) -> dict[str, Any]:
    """form_config for any hub domain."""
    next_url = parse_qs(urlsplit(url).query)["next"][0]
    value = url_search_params_get(next_url.partition("#")[2], "fancy-forms-config")
    return json.loads(value or "null")


def test_every_problem_is_reported_at_once(staging_config: links.StackConfig) -> None:
    with pytest.raises(links.LinkError) as raised:
        links.links(
            staging_config,
            request(cloud="azure", repo="pangeo-data/x.git", ref="my branch", path="../x"),
        )
    assert raised.value.problems == [
        "--repo 'pangeo-data/x.git': drop the '.git' from the name",
        "--ref 'my branch' is not a git ref: it has spaces",
        "--path '../x': give a path inside the repository, like notebooks/intro.ipynb",
        "--cloud 'azure': stack 'staging' has no such cloud; it has: gcp, aws",
    ]


def test_an_unknown_profile_lists_the_stacks_slugs(staging_config: links.StackConfig) -> None:
    with pytest.raises(links.LinkError) as raised:
        links.links(staging_config, request(profile="bigmem", repo="x"))
    assert raised.value.problems[-1] == (
        "--profile 'bigmem': gcp has no such profile; it has: user, highmem, gpu"
    )
    assert len(raised.value.problems) == 2  # the repository's problem too


def test_a_commit_cannot_be_pulled(staging_config: links.StackConfig) -> None:
    with pytest.raises(links.LinkError, match="nbgitpuller pulls only a branch"):
        links.links(staging_config, request(ref="a" * 40))


def write_stack(root: Path, stack: str, edit: Any) -> None:
    data = yaml.safe_load((STACKS / "Pulumi.staging.yaml").read_text())
    edit(data["config"])
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data))


def test_slugs_come_from_the_stacks_pools(tmp_path: Path) -> None:
    def rename(config: dict[str, Any]) -> None:
        pools = config["pangeo-binder:clouds"]["gcp"]["nodePools"]
        pools["bigmem"] = pools.pop("highmem")
        del config["pangeo-binder:clouds"]["aws"]

    write_stack(tmp_path, "lab", rename)
    config = links.stack_config(tmp_path, "lab")
    result, _ = links.links(config, request(stack="lab", profile="bigmem"))
    assert form_config(result["build"])["profile"] == "bigmem"
    with pytest.raises(links.LinkError) as raised:
        links.links(config, request(stack="lab", profile="highmem", cloud="aws"))
    assert raised.value.problems == ["--cloud 'aws': stack 'lab' has no such cloud; it has: gcp"]


def test_a_hub_without_binderhub_has_no_build_link(tmp_path: Path) -> None:
    def disable(config: dict[str, Any]) -> None:
        config["pangeo-binder:hub"]["binder"] = {"enabled": False}
        for cloud in config["pangeo-binder:clouds"].values():  # it builds too: it goes
            cloud.pop("publicBinder", None)
            cloud["nodePools"].pop("public", None)

    write_stack(tmp_path, "nobinder", disable)
    config = links.stack_config(tmp_path, "nobinder")
    with pytest.raises(links.LinkError) as raised:
        links.links(config, request(stack="nobinder"))
    assert raised.value.problems == [
        "profile 'user' on gcp does not offer building from a repository "
        "(hub.binder.enabled false?); profiles that do: none"
    ]


def test_secure_values_are_never_needed(tmp_path: Path) -> None:
    cipher = "v1:c2VjcmV0LWNpcGhlcnRleHQ="

    def encrypt(config: dict[str, Any]) -> None:
        config["pangeo-binder:secrets"] = {"gcp": {"githubClientSecret": {"secure": cipher}}}

    write_stack(tmp_path, "sealed", encrypt)
    config = links.stack_config(tmp_path, "sealed")
    assert config.secrets.gcp is not None  # type: ignore[union-attr]
    result, _ = links.links(config, request(stack="sealed"))
    assert cipher not in json.dumps(result)


def test_a_broken_stack_file_is_a_config_error(tmp_path: Path) -> None:
    def break_it(config: dict[str, Any]) -> None:
        config["pangeo-binder:clouds"]["gcp"]["hub"]["domain"] = "not a domain"

    write_stack(tmp_path, "broken", break_it)
    with pytest.raises(links.ConfigError, match=r"clouds\.gcp\.hub\.domain"):
        links.stack_config(tmp_path, "broken")


def test_a_missing_stack_names_the_stacks_there() -> None:
    with pytest.raises(links.LinkError, match=r"no Pulumi\.dev\.yaml .*prod, staging"):
        links.stack_config(STACKS, "dev")


# --- the command -------------------------------------------------------------------------------


def run(*args: str, cwd: Path = STACKS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pangeo_binder.links", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_prints_json(tmp_path: Path) -> None:
    done = run(
        *["--stack", "staging", "--cloud", "gcp", "--repo", "pangeo-data/pangeo-tutorial"],
        *["--ref", "main", "--profile", "highmem", "--path", "intro.ipynb", "--format", "json"],
        *["--root", str(STACKS)],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(result) == ["badge", "build", "pull"]
    assert form_config(result["build"])["profile"] == "highmem"
    assert pull_query(result["pull"])["urlpath"] == "lab/tree/pangeo-tutorial/intro.ipynb"
    assert result["badge"] == links.badge(result["build"], DOMAIN)


def test_the_command_prints_text_with_labels() -> None:
    done = run(*links.EXAMPLE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines[::2]] == ["build", "pull", "badge"]
    expected, _ = links.links(links.stack_config(STACKS, "staging"), request(path="README.md"))
    assert [line.strip() for line in lines[1::2]] == list(expected.values())


def test_the_command_refuses_with_every_problem_and_a_nonzero_exit() -> None:
    done = run("--stack", "staging", "--cloud", "gcp", "--repo", "a/b", "--ref", "x y")
    assert done.returncode == 2 and done.stdout == ""
    assert "--ref 'x y' is not a git ref: it has spaces" in done.stderr
    done = run(
        "--stack", "staging", "--cloud", "gcp", "--repo", "a/b", "--ref", "main", "--profile", "p"
    )
    assert done.returncode == 2
    assert "it has: user, highmem, gpu" in done.stderr


def test_the_command_needs_its_four_arguments() -> None:
    done = run("--stack", "staging")
    assert done.returncode == 2
    assert "required: --cloud, --repo, --ref" in done.stderr


# --- the user guide ----------------------------------------------------------------------------


def test_the_user_guides_example_is_what_the_command_prints() -> None:
    page = (ROOT / links.GUIDE).read_text()
    assert links.BEGIN in page and links.END in page
    assert page == links.with_section(page, links.example_section(ROOT)), (
        "run: .venv/bin/python -m pangeo_binder.links --update-docs"
    )
