"""JupyterHub extraConfig: GitHub teams become groups, and each user sees only the profiles
their groups allow.

Executed by z2jh's jupyterhub_config.py (which defines `c`) after `singleuser.profileList`
has been set; imported by the test suite, where `c` does not exist.
"""

from __future__ import annotations

import copy
from typing import Any

ALLOWED_GROUPS_KEY = "allowed_groups"


def team_groups(auth_state: dict[str, Any] | None) -> list[str]:
    """`org:team` (the team's slug) for every GitHub team in the auth state, as the
    `populate_teams_in_auth_state` option stores them (GitHub's /user/teams objects)."""
    teams = (auth_state or {}).get("teams") or []
    return sorted(
        {
            f"{team['organization']['login']}:{team['slug']}"
            for team in teams
            if team.get("slug") and (team.get("organization") or {}).get("login")
        }
    )


def may_use(profile: dict[str, Any], groups: set[str], admin: bool) -> bool:
    """A profile without `allowed_groups` is for everyone; admins may use every profile."""
    allowed = profile.get(ALLOWED_GROUPS_KEY)
    return allowed is None or admin or bool(groups.intersection(allowed))


def profiles_for(profiles: list[dict[str, Any]], groups: set[str], admin: bool) -> list[dict]:
    """The profiles one user may start, without the `allowed_groups` key (the form shows
    the whole list to the user); the first remaining profile becomes the default."""
    visible = []
    for profile in profiles:
        if may_use(profile, groups, admin):
            shown = copy.deepcopy(profile)
            shown.pop(ALLOWED_GROUPS_KEY, None)
            visible.append(shown)
    if visible and not any(profile.get("default") for profile in visible):
        visible[0]["default"] = True
    return visible


class NoProfileError(PermissionError):
    """The user may start none of the profiles: refuse, never fall back to the base config."""


def make_profile_list(profiles: list[dict[str, Any]]):
    """KubeSpawner's `profile_list` as a callable. KubeSpawner calls it to render the form
    and again in `load_user_options` when a server starts, so a profile hidden here cannot
    be started by posting its slug (or through the REST API) either."""

    def profile_list(spawner: Any) -> list[dict[str, Any]]:
        user = spawner.user
        groups = {group.name for group in user.groups}
        visible = profiles_for(profiles, groups, bool(user.admin))
        if not visible:
            raise NoProfileError(
                f"{user.name} may start none of this hub's machine types; ask an admin to add "
                "you to a GitHub team listed in the hub's config"
            )
        return visible

    return profile_list


def configure(c: Any) -> None:
    """Wire the functions above into the hub's config."""
    c.GitHubOAuthenticator.auth_state_groups_key = team_groups
    static = list(c.KubeSpawner.profile_list or [])
    c.KubeSpawner.profile_list = make_profile_list(static)


if "c" in globals():  # executed as hub.extraConfig
    configure(c)  # type: ignore[name-defined]  # noqa: F821
