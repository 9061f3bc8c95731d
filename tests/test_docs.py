"""Docs that must say what the code does."""

from __future__ import annotations

from pathlib import Path

from pangeo_binder.reference import render

ROOT = Path(__file__).resolve().parent.parent


def test_config_reference_is_generated_from_the_model() -> None:
    page = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert page == render(), (
        "run: .venv/bin/python -m pangeo_binder.reference > docs/reference/config.md"
    )


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
