"""Docs that must say what the code does."""

from __future__ import annotations

from pathlib import Path

from pangeo_binder import flows
from pangeo_binder.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_config_reference_is_generated_from_the_model() -> None:
    page = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert page == render(), (
        "run: .venv/bin/python -m pangeo_binder.reference > docs/reference/config.md"
    )


def test_flow_reference_is_generated_from_the_matrix() -> None:
    page = (ROOT / "docs" / "reference" / "flows.md").read_text()
    assert page == flows.render(), (
        "run: .venv/bin/python -m pangeo_binder.flows > docs/reference/flows.md"
    )
    assert "| proxy | hub | 8081/TCP |" in page


def test_reference_covers_every_gcp_key() -> None:
    page = render()
    for key in (
        "`nodePools`",
        "`deleteAfterDays`",
        "`keepRecentVersions`",
        "`billingAccount`",
        "`exclusions`",
    ):
        assert key in page


def test_the_readme_quickstart_runs_in_order() -> None:
    """The quickstart's steps come in the order a new operator needs them: the OAuth app (its
    client id) before init, the stack exists (`pulumi stack init`) before a secret is set on
    it, and is previewed before it is deployed."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart")[1].split("\n## ")[0]
    steps = [
        "make prereqs STACK=NAME",
        "https://DOMAIN/hub/oauth_callback",
        "python -m pangeo_binder.init --stack NAME",
        "make login STACK=NAME",
        "pulumi stack init NAME",
        "pulumi config set --secret --path 'secrets.gcp.githubClientSecret' --stack NAME VALUE",
        "make preview STACK=NAME",
        "make up STACK=NAME",
        "hubAddress",
        "kubectl -n binder rollout restart deployment/autohttps",
        "log in with GitHub",
    ]
    flat = " ".join(quickstart.split())
    positions = [flat.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert readme.index("make up STACK=") < readme.index("## Quickstart")  # the two commands
    assert "make test" in readme.split("## Quickstart")[0]


def test_the_share_your_work_page_matches_the_hub() -> None:
    """docs/share-your-work.md names variables every staging server really gets, and links
    to user-guide sections that exist."""
    import re

    from conftest import release
    from harness import run_program

    page = (ROOT / "docs" / "share-your-work.md").read_text()
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.*)$", guide, re.M)
    }
    linked = re.findall(r"\(user-guide\.md#([\w-]+)\)", page)
    assert linked and set(linked) <= anchors
    named = set(re.findall(r"\$([A-Z_]+)", page))
    assert named >= {"GH_SCOPED_CREDS_APP_URL", "PUBLIC_PERSISTENT_BUCKET", "PERSISTENT_BUCKET"}
    run = run_program("staging")
    for cloud in ("gcp", "aws"):
        env = release(run, cloud, "jupyterhub")["values"]["singleuser"]["extraEnv"]
        assert named <= set(env), (cloud, named - set(env))
