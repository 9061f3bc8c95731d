"""The spawn form in a real browser, from the real hub running the generated configuration.

The staging stack's GCP jupyterhub release (the program under the mock engine) is rendered with
the pinned z2jh chart; its hub pod then runs locally (tests/local_hub.py): JupyterHub 5.5.0
loads the chart's own jupyterhub_config.py and z2jh.py, which read the rendered Secret's
values.yaml and execute hub.extraConfig (fancy-profiles' switch, then the GitHub-team profile
filter). configurable-http-proxy 5.2.0 (the chart's proxy image version) sits in front of it,
GitHub is tests/fake_github.py, the spawner is KubeSpawner without its API calls
(tests/offline_spawner.py), and fancy-profiles is the pin of images/hub/requirements.txt.
Headless Chromium (Debian's chromium and chromedriver, through Selenium) signs in as an
ordinary member of the organization and as a member of the privileged team and reads the form.

Needs chromium, chromedriver and configurable-http-proxy: skipped without them, failed with
CI=true (.ci/run installs them). Screenshots go to test-artifacts/spawn-form-*.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import release
from fake_github import GitHubUser, fake_github, kube_api_recorder
from harness import ROOT, Run, skip_or_fail
from local_hub import find_tool, local_hub, prepare_hub
from pangeo_binder import links

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
LOCAL_TOOLS = ROOT / "tests" / "browser-tools" / "node_modules" / ".bin"  # npm ci there
ORG = "pangeo-data"  # allowedOrganizations of Pulumi.staging.yaml
PRIVILEGED_TEAM = "gpu-users"  # privilegedGroups: [pangeo-data:gpu-users]
MEMBER = GitHubUser("nora-member", 1001, orgs=(ORG,), teams=((ORG, "maintainers"),))
GPU_USER = GitHubUser("gita-gpu", 1002, orgs=(ORG,), teams=((ORG, PRIVILEGED_TEAM),))
REPO = "pangeo-data/pangeo-tutorial"
WAIT = 20  # seconds: the longest any one browser wait may take


# --- tools and processes ------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    chromium: str
    chromedriver: str
    chp: str


@pytest.fixture(scope="module")
def tools() -> Tools:
    found = {
        # Debian's chromium here and in .ci/run; Google Chrome on GitHub's hosted runners.
        "chromium": find_tool("chromium")
        or find_tool("chromium-browser")
        or find_tool("google-chrome"),
        "chromedriver": find_tool("chromedriver"),
        "configurable-http-proxy": find_tool("configurable-http-proxy", LOCAL_TOOLS),
    }
    absent = [name for name, path in found.items() if path is None]
    if absent:
        skip_or_fail(
            f"the spawn-form browser test needs {', '.join(absent)}: run .ci/run as root once "
            "(apt-get install chromium chromium-driver; npm ci --prefix tests/browser-tools, "
            "the proxy locked in tests/browser-tools/package-lock.json)"
        )
    return Tools(found["chromium"], found["chromedriver"], found["configurable-http-proxy"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def values(staging: Run) -> dict[str, Any]:
    return release(staging, "gcp", "jupyterhub")["values"]


@pytest.fixture(scope="module")
def hub(
    tools: Tools, values: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    pod, ports, app = prepare_hub(values, workdir)
    with (
        fake_github(app, [MEMBER, GPU_USER]) as github,
        kube_api_recorder() as (kube_url, kube_requests),
        local_hub(
            pod, ports, chp=tools.chp, github_url=github.url, kube_url=kube_url, workdir=workdir
        ) as url,
    ):
        yield Hub(url, workdir, github.requests, kube_requests)
        # Everything the test did went without a single Kubernetes API request.
        assert kube_requests == [], kube_requests


@dataclass
class Hub:
    url: str
    workdir: Path
    github_requests: list[str]
    kube_requests: list[str]

    def log(self) -> str:
        return (self.workdir / "hub.log").read_text(errors="replace")


@pytest.fixture
def browser(tools: Tools, tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile, so no cookies) per test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = tools.chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=tools.chromedriver, log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# --- browser steps ------------------------------------------------------------------------


def wait(driver: Any, condition: Any, what: str) -> Any:
    """Until `condition` holds, at most WAIT seconds; on timeout keep a screenshot of the page."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)
    except TimeoutException:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "spawn-form-timeout.png"))
        raise AssertionError(
            f"waited {WAIT}s for {what} at {driver.current_url}; page in "
            f"{ARTIFACTS / 'spawn-form-timeout.png'}"
        ) from None


def css(selector: str) -> Any:
    from selenium.webdriver.support import expected_conditions as ec

    return ec.presence_of_element_located(("css selector", selector))


def sign_in(driver: Any, hub: Hub, user: GitHubUser, next_url: str = "/hub/spawn") -> None:
    """The hub's login page, "Sign in with GitHub", the fake GitHub's page, back to the hub."""
    driver.get(f"{hub.url}{next_url}")
    button = wait(driver, css("a#login-main, a.btn-jupyter[href*='oauth_login']"), "login button")
    button.click()
    wait(driver, css(f"#login-as-{user.login}"), "the fake GitHub's sign-in page").click()


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"spawn-form-{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(900, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def profiles_shown(driver: Any) -> dict[str, str]:
    """slug -> heading of every profile card the fancy form rendered."""
    wait(driver, css("div.profile-select"), "the fancy-profiles form")
    cards = driver.find_elements("css selector", "div.profile-select")
    return {
        card.get_attribute("id").removeprefix("profile-"): card.find_element(
            "css selector", "h2"
        ).text
        for card in cards
    }


def page_profiles(driver: Any) -> list[dict[str, Any]]:
    """The profile list the hub rendered into the page (fancy-profiles' form.html)."""
    return driver.execute_script("return window.profileList")


def image_select(driver: Any, profile: str) -> Any:
    """The react-select control of `profile`'s image option (its hidden input's sibling)."""
    return driver.find_element(
        "xpath",
        f"//input[@name='profile-option-{profile}--image']/parent::div"
        "/div[contains(@class,'select__control')]",
    )


def open_image_menu(driver: Any, profile: str) -> list[str]:
    """Open the image menu (react-select renders options only while open): their labels."""
    image_select(driver, profile).click()
    wait(driver, css(".select__menu .select__option"), "the image menu")
    return [
        option.find_element("css selector", ".react-select-item-title").text
        for option in driver.find_elements("css selector", ".select__menu .select__option")
    ]


def choose(driver: Any, label: str) -> None:
    """Click the open menu's option titled `label`."""
    driver.find_element(
        "xpath",
        "//div[contains(@class,'select__option')]"
        f"[.//div[contains(@class,'react-select-item-title')][normalize-space()='{label}']]",
    ).click()


def is_gpu(profile: dict[str, Any]) -> bool:
    return "nvidia.com/gpu" in json.dumps(profile)


# --- the tests ----------------------------------------------------------------------------


def generated_profiles(values: dict[str, Any]) -> list[dict[str, Any]]:
    return values["singleuser"]["profileList"]


def test_the_hub_runs_the_charts_config_with_fancy_profiles_and_the_profile_filter(
    hub: Hub,
) -> None:
    log = hub.log()
    for key in ("05-fancy-profiles", "10-hub-access"):
        assert f"Loading extra config: {key}" in log
    assert "not installed in this hub image" not in log  # fancy_profiles.MISSING
    assert "Using Spawner: offline_spawner.OfflineKubeSpawner" in log
    assert "Using Authenticator: oauthenticator.github.GitHubOAuthenticator-17.4.0" in log
    assert "Running JupyterHub version 5.5.0" in log


def test_an_org_member_sees_the_cpu_profiles_only_and_the_image_choices(
    hub: Hub, browser: Any, values: dict[str, Any]
) -> None:
    everyone = [p for p in generated_profiles(values) if "allowed_groups" not in p]
    assert everyone and any(is_gpu(p) for p in generated_profiles(values))

    sign_in(browser, hub, MEMBER)
    shown = profiles_shown(browser)
    assert shown == {p["slug"]: p["display_name"] for p in everyone}
    assert not any(is_gpu(p) for p in page_profiles(browser))
    assert "allowed_groups" not in json.dumps(page_profiles(browser))
    assert f"GET /api/v3/orgs/{ORG}/members/{MEMBER.login}" in hub.github_requests
    screenshot(browser, "member")

    profile = everyone[0]["slug"]
    image = everyone[0]["profile_options"]["image"]
    menu = open_image_menu(browser, profile)
    assert menu == [
        *(choice["display_name"] for choice in image["choices"].values()),
        image["unlisted_choice"]["display_name_in_choices"],  # your own image
        "Build your own image",  # fancy-profiles: from a repository, through BinderHub
    ]
    screenshot(browser, "member-image-menu")

    choose(browser, image["unlisted_choice"]["display_name_in_choices"])
    own = wait(
        browser,
        css(f"input#profile-option-{profile}--image--unlisted-choice"),
        "the your-own-image field",
    )
    label = browser.find_element(
        "css selector", f"label[for='profile-option-{profile}--image--unlisted-choice']"
    )
    assert label.text == image["unlisted_choice"]["display_name"]
    own.send_keys("ghcr.io/example-lab/climate-notebook")  # no tag: the values refuse it
    label.click()  # blur: the field validates
    wait(
        browser,
        css(f"#profile-{profile} .invalid-feedback"),
        "the your-own-image validation message",
    )
    message = browser.find_element("css selector", f"#profile-{profile} .invalid-feedback").text
    assert message == image["unlisted_choice"]["validation_message"]
    screenshot(browser, "member-own-image")


def test_a_privileged_team_member_also_sees_the_gpu_profile(
    hub: Hub, browser: Any, values: dict[str, Any]
) -> None:
    sign_in(browser, hub, GPU_USER)
    shown = profiles_shown(browser)
    assert shown == {p["slug"]: p["display_name"] for p in generated_profiles(values)}
    gpu = [p["slug"] for p in page_profiles(browser) if is_gpu(p)]
    assert gpu and all(slug in shown for slug in gpu)
    screenshot(browser, "privileged")


def test_a_launch_link_opens_the_form_with_the_repository_filled_in(
    hub: Hub, browser: Any, values: dict[str, Any]
) -> None:
    profile = generated_profiles(values)[0]["slug"]
    sign_in(browser, hub, MEMBER)
    profiles_shown(browser)
    # The product's own build link (python -m pangeo_binder.links), without auto-start (no
    # BinderHub here). It goes through the login; signed in already, the browser opens its
    # `next`, the spawn form with the permalink fragment.
    build = links.build_url(
        "hub.example.org", profile, links.parse_repository(REPO), "HEAD", auto_start=False
    )
    (next_url,) = parse_qs(urlsplit(build).query)["next"]
    link = f"{hub.url}{next_url}"
    print(f"launch link: {link}")
    browser.get(
        f"{hub.url}/hub/home"
    )  # a link opens a new page; from /hub/spawn only the hash would change
    browser.get(link)
    field = f"profile-option-{profile}--image--unlisted-choice"
    repo = wait(browser, css(f"input#{field}--repo"), "the repository field")
    assert repo.get_attribute("value") == REPO
    assert browser.find_element("css selector", f"input#{field}--ref").get_attribute("value") == (
        "HEAD"
    )
    selected = image_select(browser, profile).find_element(
        "css selector", ".select__single-value .react-select-item-title"
    )
    assert selected.text == "Build your own image"
    button = browser.find_element("css selector", "#submit-slot button")
    assert button.text == "Build Image and Start"
    screenshot(browser, "launch-link")
