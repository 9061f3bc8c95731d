"""A new operator's first day, as written: the Makefile's choice of stack, the README's
quickstart commands, the dashboards fetch, and the docs' claims that the code can check.

The Makefile runs with `make -n` in a temporary folder holding a copy of it and 0, 1 or 2
stack files: nothing is installed and no `pulumi` runs, and the project's own stack files play
no part."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.error
from pathlib import Path

import pytest

from pangeo_binder.support import dashboards

ROOT = Path(__file__).resolve().parent.parent
STACK_TARGETS = ("login", "prereqs", "plan", "cold-start", "preview", "up", "destroy")


def make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`make -n ARGS` in `folder` with STACK unset (whatever the caller's shell exports)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder)}
    return subprocess.run(
        ["make", "-n", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def project(tmp_path: Path, *stacks: str) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "Pulumi.yaml").write_text("name: pangeo-binder\nruntime: python\n")
    for stack in stacks:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    return tmp_path


@pytest.mark.parametrize("target", STACK_TARGETS)
def test_the_only_stack_file_is_the_stack(tmp_path: Path, target: str) -> None:
    done = make(project(tmp_path, "mygcp"), target)
    assert done.returncode == 0, done.stderr
    assert "using STACK=mygcp, the only stack file here" in done.stdout
    assert "staging" not in done.stdout
    if target in ("up", "preview", "destroy"):
        assert '--stack "mygcp"' in done.stdout


@pytest.mark.parametrize("target", STACK_TARGETS)
def test_no_stack_file_stops_before_anything_naming_init(tmp_path: Path, target: str) -> None:
    done = make(project(tmp_path), target)
    assert done.returncode != 0
    assert "no stack file (Pulumi.NAME.yaml) here" in done.stderr
    assert "python -m pangeo_binder.init --stack NAME" in done.stderr
    assert done.stdout == ""  # not even the venv: nothing would run


@pytest.mark.parametrize("target", STACK_TARGETS)
def test_several_stack_files_stop_and_list_them(tmp_path: Path, target: str) -> None:
    done = make(project(tmp_path, "mygcp", "myaws"), target)
    assert done.returncode != 0
    assert "STACK is not set and there are 2 stack files: myaws mygcp" in done.stderr
    assert f"make {target} STACK=NAME" in done.stderr
    assert "pangeo_binder.init" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("target", STACK_TARGETS)
def test_a_stack_without_its_file_stops_before_pulumi(tmp_path: Path, target: str) -> None:
    done = make(project(tmp_path, "mygcp"), target, "STACK=staging")
    assert done.returncode != 0
    assert "STACK=staging has no stack file Pulumi.staging.yaml" in done.stderr
    assert "(stack files here: mygcp)" in done.stderr and "pangeo_binder.init" in done.stderr
    assert "pulumi" not in done.stdout


def test_a_named_stack_is_used_among_several(tmp_path: Path) -> None:
    done = make(project(tmp_path, "mygcp", "myaws"), "preview", "STACK=myaws")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    prereqs = next(i for i, line in enumerate(lines) if "-m pangeo_binder.prereqs" in line)
    first_pulumi = next(i for i, line in enumerate(lines) if line.startswith("pulumi "))
    assert prereqs < first_pulumi and '--stack "myaws"' in lines[prereqs]
    fetch = next(line for line in lines if "pangeo_binder.support.dashboards" in line)
    assert fetch.endswith('--stack "myaws"')  # fetched only if that stack has monitoring


@pytest.mark.parametrize("stacks", [(), ("a", "b")])
def test_targets_without_a_stack_do_not_need_one(tmp_path: Path, stacks: tuple[str, ...]) -> None:
    for target in ("lint", "venv", "bench", "dashboards"):
        done = make(project(tmp_path, *stacks), target)
        assert done.returncode == 0, (target, done.stderr)
    fetch = make(project(tmp_path, *stacks), "dashboards").stdout
    assert fetch.strip().endswith("-m pangeo_binder.support.dashboards")  # all of it, for tests


# --- the dashboards' fetch ------------------------------------------------------------------


def test_a_stack_without_monitoring_fetches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.mygcp.yaml").write_text("config:\n  pangeo-binder:environment: staging\n")
    (tmp_path / "Pulumi.mon.yaml").write_text("config:\n  pangeo-binder:monitoring: {}\n")
    fetched: list[bool] = []
    monkeypatch.setattr(dashboards, "fetch", lambda **_: fetched.append(True))
    assert dashboards.main(["--stack", "mygcp", "--dir", str(tmp_path)]) == 0
    assert fetched == [] and "has no monitoring" in capsys.readouterr().out
    assert dashboards.main(["--stack", "mon", "--dir", str(tmp_path)]) == 0
    assert fetched == [True]


def test_a_failed_download_is_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dashboards.urllib.request, "urlopen", offline)
    monkeypatch.setenv(dashboards.DASHBOARDS_ENV, str(tmp_path / "cache"))
    assert dashboards.main([]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "Temporary failure in name resolution" in captured.err
    assert "make dashboards" in captured.err and dashboards.DASHBOARDS_ENV in captured.err
    assert not (tmp_path / "cache" / dashboards.JUPYTERHUB_DASHBOARDS.dirname).exists()


def test_a_download_that_is_no_archive_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self) -> bytes:
            return b"<html>rate limited</html>"

    monkeypatch.setattr(dashboards.urllib.request, "urlopen", lambda *a, **k: Response())
    with pytest.raises(dashboards.DashboardsFetchError, match="not a readable archive"):
        dashboards.fetch(root=tmp_path, log=lambda _: None)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


# --- the README and the docs ----------------------------------------------------------------


def quickstart() -> str:
    return (ROOT / "README.md").read_text().split("## Quickstart")[1].split("\n## ")[0]


def readme_init_commands() -> dict[str, list[str]]:
    """The quickstart's init commands by cloud, as argument lists."""
    commands = {}
    for block in re.findall(r"```bash\n(.*?)```", quickstart(), re.S):
        text = block.replace("\\\n", " ")
        if "pangeo_binder.init" in text:
            argv = text.split("pangeo_binder.init", 1)[1].split()
            commands[argv[argv.index("--cloud") + 1]] = argv
    return commands


def test_the_readme_spells_out_both_init_commands() -> None:
    commands = readme_init_commands()
    assert set(commands) == {"gcp", "aws"}
    aws = commands["aws"]
    assert not {"--zone", "--project", "--billing-account"} & set(aws)
    assert "--account-id" in aws and "--client-id" in commands["gcp"]


# Values a newcomer would type for the README's capitals.
OWN = {
    "NAME": "mystack",
    "PROJECT": "my-project-1",
    "BILLING_ACCOUNT": "012345-6789AB-CDEF01",
    "DOMAIN": "hub.my-lab.org",
    "EMAIL": "ops@my-lab.org",
    "ORG": "my-lab",
    "CLIENT_ID": "Ov23liMyLab0123456",
    "LOGIN": "me",
    "ACCOUNT_ID": "123456789012",
}


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_the_readme_init_command_runs_as_written(
    tmp_path: Path, cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pangeo_binder.init import main

    argv = readme_init_commands()[cloud]
    # As written, with its capitals: refused, each flag named.
    assert main([*argv, "--dir", str(tmp_path)], interactive=False) == 2
    err = capsys.readouterr().err
    for flag in ("--stack", "--domain", "--github-org", "--client-id", "--admin"):
        assert f"  - {flag}: " in err and "README's placeholder" in err, (flag, err)
    assert list(tmp_path.iterdir()) == []
    # With the capitals replaced: written.
    own = [OWN.get(arg, arg) for arg in argv]
    assert main([*own, "--dir", str(tmp_path)], interactive=False) == 0, capsys.readouterr().err
    assert (tmp_path / "Pulumi.mystack.yaml").exists()


def test_every_readme_make_command_on_a_stack_names_it() -> None:
    """A bare `make login` in a fresh clone (two stack files) would stop: the quickstart
    always says which stack."""
    text = " ".join(quickstart().split())
    commands = re.findall(r"`(make [a-z-]+[^`]*)`", text)
    assert commands
    for command in commands:
        target = command.split()[1]
        if target in STACK_TARGETS:
            assert "STACK=NAME" in command, command


def test_the_readme_dns_step_matches_the_aws_address() -> None:
    """On AWS `hubAddress` is the Elastic IPs, comma-separated (aws/hub_address.py): one A
    record each, as https.md and smoke --diagnose say; no CNAME."""
    step = " ".join(quickstart().split("8. **DNS.**")[1].split("9. **")[0].split())
    assert "one `A` record per IP" in step and "CNAME" not in step
    aws = " ".join((ROOT / "docs" / "howto" / "aws.md").read_text().split())
    assert "hubLoadBalancer" not in aws and "one `A` record per IP" in aws
    https = " ".join((ROOT / "docs" / "howto" / "https.md").read_text().split())
    assert "one A record per Elastic IP" in https


HEADING = re.compile(r"^#{1,6} (.+?)\s*#*\s*$", re.M)


FENCED = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation but `-` and `_` dropped, each space a
    hyphen (headings inside fenced code are none)."""
    found = set()
    for heading in HEADING.findall(FENCED.sub("", page.read_text())):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def test_every_anchor_link_in_the_docs_exists() -> None:
    from test_self_contained import INLINE_LINK, pages, prose

    broken = []
    for page in pages():
        for match in INLINE_LINK.finditer(prose(page.read_text())):
            target = match.group(1).strip("<>")
            if "#" not in target or "://" in target:
                continue
            path, anchor = target.split("#", 1)
            linked = (page.parent / path).resolve() if path else page
            if linked.suffix == ".md" and linked.is_file() and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_plan_reference_links_the_cost_page_section_that_exists() -> None:
    page = (ROOT / "docs" / "reference" / "plan.md").read_text()
    linked = re.findall(r"\(\.\./topics/cost\.md#([\w-]+)\)", page)
    assert linked and set(linked) <= anchors(ROOT / "docs" / "topics" / "cost.md")


def test_the_user_guide_states_the_real_dask_limits() -> None:
    from pangeo_binder.hub.config import DaskSettings
    from pangeo_binder.hub.dask_values import PRIVILEGED_SHARES, WORKER_SHARES

    guide = (ROOT / "docs" / "user-guide.md").read_text()
    limits = guide.split("<!-- dask-limits")[1].split("\n\n")[0]
    flat = " ".join(limits.split())
    defaults = DaskSettings()
    assert f"**{defaults.max_workers} workers**" in flat
    assert f"**{defaults.max_cores} cores**" in flat
    assert f"**{defaults.max_memory_gb} GiB**" in flat
    assert f"**{defaults.idle_timeout_minutes} minutes**" in flat
    everyone = sorted(set(WORKER_SHARES) - set(PRIVILEGED_SHARES), reverse=True)
    assert everyone == [8, 4] and sorted(PRIVILEGED_SHARES, reverse=True) == [2, 1]
    assert "1/8 and 1/4 of a node for everyone, 1/2 and a whole node" in flat


def test_the_user_guide_says_gpu_images_are_not_pre_pulled() -> None:
    """The pre-puller pulls the CPU menu images only (hub/jupyterhub_values.py:
    pullProfileListImages off, extraImages from the cpu menu)."""
    guide = " ".join((ROOT / "docs" / "user-guide.md").read_text().split())
    assert "Menu images start fastest: nodes keep them cached" not in guide
    assert "GPU images are not pre-pulled" in guide


def test_the_researcher_docs_say_links_need_the_hub_login() -> None:
    share = " ".join((ROOT / "docs" / "share-your-work.md").read_text().split())
    guide = " ".join((ROOT / "docs" / "user-guide.md").read_text().split())
    assert "let anyone open your repository" not in share
    assert "go through the hub's GitHub login" in share
    assert "every link goes through the hub's GitHub login" in guide


def test_no_page_says_pip_install_pangeo_binder() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "howto" / "adopt.md"):
        text = " ".join(page.read_text().split())
        assert "`pip install` pangeo-binder" not in text  # the README's old advice
        assert "not on a package index" in text or "not published on a package index" in text
        assert "git+https://github.com/OWNER/pangeo-binder@COMMIT" in text


def test_the_gpu_pool_page_says_who_sees_a_gpu_pool() -> None:
    page = " ".join((ROOT / "docs" / "howto" / "node-pools.md").read_text().split())
    assert "only admins see the new profile** until you name a team" in page
    assert "privilegedGroups: [my-org:gpu-users]" in page
