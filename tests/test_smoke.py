"""The deploy's smoke check reads the right hub URLs, and refuses to pass with none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import ROOT
from pangeo_binder.smoke import SmokeError, hub_urls, main

CONFIG = {
    "pangeo-binder:clouds": {
        "gcp": {"hub": {"domain": "gcp.example.org"}},
        "aws": {"hub": {"domain": "aws.example.org"}},
    }
}


def test_an_exported_hub_url_wins_over_the_configured_domain() -> None:
    outputs = {"gcp": {"hubUrl": "https://hub.gcp.example.org/"}, "aws": {"clusterName": "c"}}
    assert hub_urls(outputs, CONFIG) == ["https://hub.gcp.example.org", "https://aws.example.org"]


def test_a_stack_without_any_hub_fails() -> None:
    with pytest.raises(SmokeError, match="no cloud"):
        hub_urls({"gcp": {"clusterName": "c"}}, {"pangeo-binder:clouds": {"gcp": {}}})


@pytest.mark.parametrize(
    "url", ["http://hub.example.org", "https://hub.example.org/ --output /etc/x", "file:///etc"]
)
def test_only_plain_https_urls_reach_curl(url: str) -> None:
    with pytest.raises(SmokeError, match="not an https URL"):
        hub_urls({"gcp": {"hubUrl": url}}, {})


@pytest.mark.parametrize(
    ("stack", "base"),
    [("staging", "staging.pangeo-binder.example.org"), ("prod", "pangeo-binder.example.org")],
)
def test_the_stack_files_give_one_url_per_cloud(
    stack: str, base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"gcp": {"clusterName": f"pangeo-binder-{stack}"}}))
    assert main(["--stack", stack, str(outputs), "--root", str(ROOT)]) == 0
    assert capsys.readouterr().out.split() == [f"https://gcp.{base}", f"https://aws.{base}"]
