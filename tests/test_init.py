"""`python -m pangeo_binder.init`: a one-cloud stack file that the real program evaluates, or
nothing written and every problem named by its flag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness import MAIN, PLANTED_SECRET, Project
from pangeo_binder.init import DEFAULT_BUDGET_USD, check, flag_of, main

GCP = [
    "--stack", "research", "--cloud", "gcp", "--region", "us-central1",
    "--project", "research-hub-1", "--domain", "hub.research.example.org",
    "--contact-email", "ops@research.example.org", "--github-org", "research-org",
    "--github-org", "research-org:admins", "--client-id", "Ov23liResearch01", "--admin", "alice",
    "--billing-account", "012345-6789AB-CDEF01",
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


@pytest.mark.parametrize(("stack", "written"), [("research", "stack"), ("staging", None)])
def test_a_new_stack_not_named_after_its_environment_names_its_resources_after_itself(
    tmp_path: Path, stack: str, written: str | None
) -> None:
    """Without `resourceNames: stack` a stack keeps the environment's names (the default, so
    no deployed stack is renamed); a new `research` of environment staging must not take
    `pangeo-binder-staging`'s names from a `staging` in the same project."""
    assert init(tmp_path, replaced(GCP, "--stack", stack)) == 0
    config = yaml.safe_load((tmp_path / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert config.get("pangeo-binder:resourceNames") == written
    run = Project(tmp_path, main=MAIN).run_program(stack)
    [cluster] = run.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["name"] == f"pangeo-binder-{stack}"


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
        "make login STACK=research",
        "pulumi stack init research",
        "https://hub.research.example.org/hub/oauth_callback",
        "pulumi config set --secret --path 'secrets.gcp.githubClientSecret' --stack research",
        "make preview STACK=research",
        "make up STACK=research",
        "pulumi stack output gcp --stack research",
        "pulumi stack output gcpKubeconfig --show-secrets --stack research",
        "kubectl -n binder rollout restart deployment/autohttps",
        "Log in at https://hub.research.example.org",
    ]
    where = [out.index(step) for step in steps]
    assert where == sorted(where)
    assert "hubAddress" in out and "hub.dns" in out
    for number in range(1, 9):
        assert f"  {number}. " in out


def printed_commands(out: str) -> list[str]:
    """The make and pulumi commands of the printed steps."""
    return re.findall(r"\b((?:make|pulumi) [a-z-]+(?: [^,;:()]*)?)", out)


@pytest.mark.parametrize("argv", [GCP, AWS], ids=["gcp", "aws"])
def test_every_printed_command_names_the_stack(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """On a fresh clone there are several stack files: a bare `make login` or `pulumi
    config set` would stop or act on another stack."""
    assert init(tmp_path, argv) == 0
    stack = argv[argv.index("--stack") + 1]
    steps = capsys.readouterr().out.split("Next, in this order:")[1]
    commands = printed_commands(steps)
    assert any(c.startswith("make login") for c in commands)
    for command in commands:
        if command.startswith(("pulumi login", f"pulumi stack init {stack}")):
            continue  # a backend; `stack init NAME` names it as its argument
        assert f"STACK={stack}" in command.split() or f"--stack {stack}" in command, command


def test_aws_dns_step_is_one_a_record_per_elastic_ip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, AWS) == 0
    out = capsys.readouterr().out
    assert "one A record for aws.research.example.org per Elastic IP" in out
    assert "CNAME" not in out and "pulumi stack output aws --stack research-aws" in out


PLACEHELD = [
    ("--project", "PROJECT"),
    ("--github-org", "YOUR-ORG"),
    ("--client-id", "OAUTH_CLIENT_ID"),
    ("--admin", "YOU"),
    ("--stack", "NAME"),
    ("--domain", "hub.example.org"),
    ("--contact-email", "you@example.org"),
    ("--billing-account", "BILLING_ACCOUNT"),
]


@pytest.mark.parametrize(("flag", "value"), PLACEHELD, ids=[v for _, v in PLACEHELD])
def test_the_readme_placeholders_are_refused_naming_the_flag(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, replaced(GCP, flag, value)) == 2
    problems = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  - ")]
    assert problems == [
        next(line for line in problems if line.startswith(f"  - {flag}: {value!r} is the README"))
    ], problems
    assert list(tmp_path.iterdir()) == []


def test_placeholders_for_aws_are_refused(tmp_path: Path, capsys) -> None:
    assert init(tmp_path, replaced(AWS, "--account-id", "ID")) == 2
    err = capsys.readouterr().err
    assert "  - --account-id: 'ID' is the README's placeholder; type your AWS account's 12" in err


MISTAKES = [
    ("--github-org", "my-org/team", "'my-org/team': a team is written org:team, as my-org:team"),
    ("--github-org", "https://github.com/my-org", "is a URL; give the name only, e.g. my-org"),
    ("--github-org", "ops@my-org.org", "is an email address; give the GitHub name instead"),
    ("--github-org", "my-org:GPU Users", "by its slug (lowercase, hyphens for spaces"),
    ("--admin", "@alice", "'@alice': write it without the @, as alice"),
    ("--admin", "alice@example.org", "is an email address; give the GitHub name instead"),
    ("--admin", "https://github.com/alice", "is a URL; give the name only, e.g. alice"),
    ("--domain", "https://hub.my-lab.org/", "is a URL; give the host name only, e.g. hub.my-lab.org"),
    ("--domain", "ops@my-lab.org", "is an email address; give a DNS name such as hub.example.org"),
    ("--domain", "Hub.My-Lab.org.", "write it lowercase without a trailing dot, as hub.my-lab.org"),
    ("--contact-email", "mailto:ops@my-lab.org", "give the address only, as ops@my-lab.org"),
    ("--contact-email", "ops", "is not an email address; give one such as ops@example.org"),
]  # fmt: skip


@pytest.mark.parametrize(("flag", "value", "message"), MISTAKES, ids=[v for _, v, _ in MISTAKES])
def test_common_mistakes_say_what_to_type(
    tmp_path: Path, flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path, replaced(GCP, flag, value)) == 2
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1 and problems[0].startswith(f"  - {flag}: "), err
    assert message in problems[0]
    assert "pattern" not in err and "^" not in err  # what to type, not a regular expression


def test_the_client_id_may_come_later(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The OAuth app may not exist yet: the file is written without its id, says so, the
    printed steps set it, and the config check (make preview) names the key and command."""
    argv = GCP[: GCP.index("--client-id")] + GCP[GCP.index("--client-id") + 2 :]
    assert init(tmp_path, argv) == 0
    out = capsys.readouterr().out
    command = "pulumi config set --path 'clouds.gcp.hub.github.clientId' --stack research CLIENT_ID"
    assert command in out and "Create the GitHub OAuth app" in out
    text = (tmp_path / "Pulumi.research.yaml").read_text()
    assert f"#   {command}" in text and "clientId" not in yaml.safe_load(text)["config"][
        "pangeo-binder:clouds"
    ]["gcp"]["hub"].get("github", {})
    problems = {problem.path: problem.message for problem in check(text)}
    assert list(problems) == ["clouds.gcp.hub.github"]
    message = problems["clouds.gcp.hub.github"]
    assert "pulumi config set --path 'clouds.gcp.hub.github.clientId' CLIENT_ID" in message
    assert "client id of the hub's GitHub OAuth app" in message


def test_a_new_stack_gets_a_budget_by_default(tmp_path: Path, capsys) -> None:
    assert init(tmp_path, GCP) == 0 and init(tmp_path, AWS) == 0
    out = capsys.readouterr().out
    assert f"budget of ${DEFAULT_BUDGET_USD:,} a month" in out
    gcp = Project(tmp_path).stack_config("research")["clouds"]["gcp"]["budget"]
    aws = Project(tmp_path).stack_config("research-aws")["clouds"]["aws"]["budget"]
    assert gcp == {
        "monthlyUsd": DEFAULT_BUDGET_USD,
        "billingAccount": "012345-6789AB-CDEF01",
        "emails": ["ops@research.example.org"],
    }
    assert aws == {"monthlyUsd": DEFAULT_BUDGET_USD, "emails": ["ops@research.example.org"]}


def test_the_budget_is_the_operators_to_choose(tmp_path: Path, capsys) -> None:
    argv = [*AWS, "--budget", "250", "--budget-email", "money@research.example.org"]
    assert init(tmp_path, argv) == 0
    budget = Project(tmp_path).stack_config("research-aws")["clouds"]["aws"]["budget"]
    assert budget == {"monthlyUsd": 250, "emails": ["money@research.example.org"]}
    nobudget = [*replaced(GCP, "--stack", "nobudget"), "--budget", "0"]
    nobudget = nobudget[: nobudget.index("--billing-account")] + nobudget[-2:]
    assert init(tmp_path, nobudget) == 0
    assert "budget" not in Project(tmp_path).stack_config("nobudget")["clouds"]["gcp"]


def test_a_gcp_budget_needs_its_billing_account(tmp_path: Path, capsys) -> None:
    argv = GCP[: GCP.index("--billing-account")]
    assert init(tmp_path, argv) == 2
    err = capsys.readouterr().err
    assert "  - --billing-account: required for the new stack's budget (gcloud billing " in err
    assert "projects describe research-hub-1 shows it), or --budget 0 for no budget" in err


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
    for flag in ("--domain", "--contact-email", "--github-org", "--project", "--billing-account"):
        assert f"  - {flag}: required" in err
    assert "--client-id" not in err  # it may come later
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
        "--client-id (Enter: set it later): ": "Ov23liResearch01",
        "--project: ": "research-hub-1",
        "--billing-account: ": "012345-6789AB-CDEF01",
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


def test_the_default_budget_is_justified_by_the_plan_of_inits_stack(tmp_path: Path) -> None:
    """docs/howto/budget-alerts.md: far above what init's stack costs idle, about 3% of its
    ceiling (spent in about a day at full scale-out). Measured with the offline plan of the
    very files init writes, so a change of the default pools shows here."""
    import json
    import shutil
    import subprocess
    import sys

    from harness import ROOT

    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "images", tmp_path / "images")
    assert init(tmp_path, GCP) == 0 and init(tmp_path, AWS) == 0
    for stack, cloud in (("research", "gcp"), ("research-aws", "aws")):
        done = subprocess.run(
            [sys.executable, "-m", "pangeo_binder.plan", "--stack", stack, "--format", "json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        cost = json.loads(done.stdout)["clouds"][cloud]["cost"]
        idle, ceiling = cost["idleMonthlyUsd"], cost["ceilingMonthlyUsd"]
        assert 4 * idle < DEFAULT_BUDGET_USD < ceiling / 20, (cloud, idle, ceiling)
        hours_to_spend = DEFAULT_BUDGET_USD / (ceiling / 730)
        assert 18 < hours_to_spend < 30, (cloud, hours_to_spend)  # "about a day"


@pytest.mark.parametrize(
    ("stack", "says"),
    [
        ("Research_Hub", "use lowercase letters, digits and hyphens"),
        ("research-hub-experiments", "choose a stack name of at most 19"),
    ],
)
def test_a_stack_name_the_clouds_refuse_for_resource_names_is_refused(
    tmp_path: Path, stack: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stack's cloud resources are named after it (pangeo_binder.naming): a name a GCP
    service account id or a bucket cannot take is refused here, not at the first preview."""
    assert init(tmp_path, replaced(GCP, "--stack", stack)) == 2
    err = capsys.readouterr().err
    assert f"  - --stack: (stack name): the stack {stack!r} (environment staging)" in err
    assert says in err
    assert list(tmp_path.iterdir()) == []
