"""`python -m pangeo_binder.init`: a one-cloud stack file that the real program evaluates, or
nothing written and every problem named by its flag."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import MAIN, PLANTED_SECRET, Project
from pangeo_binder.init import flag_of, main

GCP = [
    "--stack", "research", "--cloud", "gcp", "--region", "us-central1",
    "--project", "research-hub-1", "--domain", "hub.research.example.org",
    "--contact-email", "ops@research.example.org", "--github-org", "research-org",
    "--github-org", "research-org:admins", "--client-id", "Ov23liResearch01", "--admin", "alice",
]  # fmt: skip
AWS = [
    "--stack", "research-aws", "--cloud", "aws", "--region", "us-west-2",
    "--account-id", "123456789012", "--domain", "aws.research.example.org",
    "--contact-email", "ops@research.example.org", "--github-org", "research-org",
    "--client-id", "Ov23liResearch02",
]  # fmt: skip


def init(tmp_path: Path, argv: list[str], **kwargs) -> int:
    return main([*argv, "--dir", str(tmp_path)], interactive=False, **kwargs)


def replaced(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


@pytest.mark.parametrize(("argv", "cloud"), [(GCP, "gcp"), (AWS, "aws")])
def test_a_written_stack_file_evaluates_under_the_mock_engine(
    tmp_path: Path, argv: list[str], cloud: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, argv) == 0
    stack = argv[argv.index("--stack") + 1]
    path = tmp_path / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert "githubClientSecret' --stack " + stack in text.splitlines()[3]  # the header's command
    assert "secrets" not in yaml.safe_load(text)["config"], "no secret, not even a placeholder"
    run = Project(tmp_path, main=MAIN).run_program(stack)
    other = {"gcp": "aws", "aws": "gcp"}[cloud]
    assert not [r for r in run.registrations if r.type.startswith(f"{other}:")]
    cluster = {"gcp": "gcp:container/cluster:Cluster", "aws": "aws:eks/cluster:Cluster"}[cloud]
    assert len(run.of_type(cluster)) == 1
    config = Project(tmp_path).stack_config(stack)
    pools = config["clouds"][cloud]["nodePools"]
    assert {key: pool["purpose"] for key, pool in pools.items()} == {
        "core": "core",
        "user": "user",
        "dask": "dask",
    }
    assert pools["core"]["minNodes"] == 1 and pools["dask"]["spot"] is True
    assert not any("gpu" in pool for pool in pools.values())
    assert run.stack_outputs[cloud]["hubUrl"] == f"https://{argv[argv.index('--domain') + 1]}"
    assert PLANTED_SECRET not in text


def test_aws_account_id_is_written_quoted(tmp_path: Path) -> None:
    assert init(tmp_path, AWS) == 0
    text = (tmp_path / "Pulumi.research-aws.yaml").read_text()
    assert "accountId: '123456789012'" in text


def test_the_next_steps_are_printed_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, GCP) == 0
    out = capsys.readouterr().out
    steps = [
        "pulumi login",
        "pulumi stack init research",
        "https://hub.research.example.org/hub/oauth_callback",
        "pulumi config set --secret --path 'secrets.gcp.githubClientSecret' --stack research",
        "make preview STACK=research",
        "make up STACK=research",
        "kubectl -n binder rollout restart deployment/autohttps",
        "Log in at https://hub.research.example.org",
    ]
    where = [out.index(step) for step in steps]
    assert where == sorted(where)
    assert "make login" in out and "hubAddress" in out and "hub.dns" in out
    for number in range(1, 9):
        assert f"  {number}. " in out


BAD = [
    (GCP, "--region", "mars-1"),
    (GCP, "--domain", "Not A Domain"),
    (GCP, "--client-id", "x"),
    (GCP, "--contact-email", "nobody"),
    (GCP, "--project", "X"),
    (GCP, "--github-org", "bad--org"),
    (AWS, "--region", "us-west-9"),
    (AWS, "--account-id", "12345"),
    (AWS, "--domain", "hub_example.org"),
]


@pytest.mark.parametrize(("argv", "flag", "value"), BAD, ids=[f"{f}={v}" for _, f, v in BAD])
def test_bad_input_is_refused_naming_its_flag_and_nothing_is_written(
    tmp_path: Path, argv: list[str], flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, replaced(argv, flag, value)) == 2
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert problems and all(line.startswith(f"  - {flag}: ") for line in problems), err
    assert list(tmp_path.iterdir()) == []


def test_every_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = replaced(
        replaced(replaced(GCP, "--region", "mars-1"), "--domain", "x y"), "--client-id", "x"
    )
    assert init(tmp_path, argv) == 2
    err = capsys.readouterr().err
    for flag in ("--region", "--domain", "--client-id"):
        assert f"  - {flag}: " in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_stack_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "Pulumi.research.yaml"
    existing.write_text("config: {}\n")
    assert init(tmp_path, GCP) == 2
    assert "  - --stack: " in capsys.readouterr().err
    assert existing.read_text() == "config: {}\n"


def test_missing_flags_without_a_terminal_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--stack", "research", "--cloud", "gcp", "--region", "us-central1"]
    assert init(tmp_path, argv) == 2
    err = capsys.readouterr().err
    for flag in ("--domain", "--contact-email", "--github-org", "--client-id", "--project"):
        assert f"  - {flag}: required" in err
    assert list(tmp_path.iterdir()) == []


def test_flags_of_the_other_cloud_are_refused(tmp_path: Path, capsys) -> None:
    assert init(tmp_path, [*GCP, "--account-id", "123456789012"]) == 2
    assert "  - --account-id: only for --cloud aws" in capsys.readouterr().err
    assert init(tmp_path, [*AWS, "--zone", "us-west-2a"]) == 2
    assert "  - --zone: only for --cloud gcp" in capsys.readouterr().err


def test_a_terminal_is_asked_for_what_is_missing(tmp_path: Path) -> None:
    answers = {
        "--domain: ": "hub.research.example.org",
        "--contact-email: ": "ops@research.example.org",
        "--github-org: ": "research-org, research-org:admins",
        "--client-id: ": "Ov23liResearch01",
        "--project: ": "research-hub-1",
    }
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return answers[prompt]

    argv = [
        "--stack",
        "research",
        "--cloud",
        "gcp",
        "--region",
        "us-central1",
        "--dir",
        str(tmp_path),
    ]
    assert main(argv, interactive=True, ask=ask) == 0
    assert asked == list(answers)
    hub = yaml.safe_load((tmp_path / "Pulumi.research.yaml").read_text())["config"][
        "pangeo-binder:hub"
    ]
    assert hub["allowedOrganizations"] == ["research-org", "research-org:admins"]


@pytest.mark.parametrize(
    ("path", "flag"),
    [
        ("clouds.gcp.region", "--region"),
        ("clouds.aws.hub.domain", "--domain"),
        ("clouds.gcp.hub.github.clientId", "--client-id"),
        ("clouds.aws.accountId", "--account-id"),
        ("hub.allowedOrganizations.0", "--github-org"),
        ("hub.adminUsers.1", "--admin"),
        ("clouds.gcp.nodePools.dask.zones", "--region"),
        ("environment", "--environment"),
    ],
)
def test_config_paths_map_to_flags(path: str, flag: str) -> None:
    assert flag_of(path) == flag
