"""The deploy's smoke check reads the right hub URLs, and refuses to pass with none."""

from __future__ import annotations

import json
import ssl
import urllib.error
from pathlib import Path

import pytest

from harness import STACKS
from pangeo_binder import smoke
from pangeo_binder.smoke import SmokeError, diagnose, hub_urls, main

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
    assert main(["--stack", stack, str(outputs), "--root", str(STACKS)]) == 0
    assert capsys.readouterr().out.split() == [f"https://gcp.{base}", f"https://aws.{base}"]


# --- --diagnose: which step of docs/howto/https.md is missing ------------------------------

URL = "https://hub.example.org"


def resolver(table: dict[str, list[str]]):
    return lambda host: table.get(host, [])


def fetch_ok(url: str) -> None:
    assert url == f"{URL}/hub/health"


def fetch_raising(error: BaseException):
    def fetch(url: str) -> None:
        raise error

    return fetch


def test_a_domain_that_does_not_resolve_says_to_create_the_record() -> None:
    problem = diagnose(URL, "203.0.113.7", namespace="binder", resolver=resolver({}))
    assert problem is not None
    assert "hub.example.org does not resolve" in problem and "203.0.113.7" in problem


def test_a_domain_pointing_elsewhere_names_both_addresses() -> None:
    problem = diagnose(
        URL,
        "198.51.100.1,198.51.100.2",
        namespace="binder",
        resolver=resolver({"hub.example.org": ["198.51.100.1", "192.0.2.9"]}),
        fetcher=fetch_ok,
    )
    assert problem is not None
    assert "192.0.2.9" in problem and "198.51.100.1, 198.51.100.2" in problem


def test_a_tls_failure_prints_the_autohttps_restart_command() -> None:
    error = urllib.error.URLError(ssl.SSLCertVerificationError("self-signed certificate"))
    problem = diagnose(
        URL,
        "203.0.113.7",
        namespace="hubs",
        resolver=resolver({"hub.example.org": ["203.0.113.7"]}),
        fetcher=fetch_raising(error),
    )
    assert problem is not None
    assert "certificate has not been issued" in problem
    assert problem.endswith("kubectl -n hubs rollout restart deployment/autohttps")


def test_another_failure_is_not_blamed_on_the_certificate() -> None:
    problem = diagnose(
        URL,
        "203.0.113.7",
        namespace="binder",
        resolver=resolver({"hub.example.org": ["203.0.113.7"]}),
        fetcher=fetch_raising(ConnectionRefusedError("refused")),
    )
    assert problem is not None
    assert "refused" in problem and "autohttps" not in problem


def test_a_hub_that_answers_on_its_reserved_address_is_ok() -> None:
    table = {"hub.example.org": ["198.51.100.2"]}
    assert (
        diagnose(
            URL,
            "198.51.100.1,198.51.100.2",
            namespace="binder",
            resolver=resolver(table),
            fetcher=fetch_ok,
        )
        is None
    )


def test_diagnose_reads_the_stack_files_hubs(tmp_path: Path, monkeypatch, capsys) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"gcp": {"hubAddress": "203.0.113.7"}}))
    table = {"gcp.staging.pangeo-binder.example.org": ["203.0.113.7"]}
    monkeypatch.setattr(smoke, "resolve", resolver(table))
    monkeypatch.setattr(smoke, "fetch", lambda url: None)
    code = main(["--stack", "staging", str(outputs), "--root", str(STACKS), "--diagnose"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ok https://gcp.staging.pangeo-binder.example.org"
    assert lines[1].startswith("aws: aws.staging.pangeo-binder.example.org does not resolve")
    assert code == 1
