"""Sharing a running server (JupyterHub 5's shares and share codes) and pushing to GitHub with
short-lived credentials (gh-scoped-creds): the pieces of the jupyterhub values they need.

Pure functions of the settings, so `jupyterhub_values` calls them in one or two lines. Scope
names are JupyterHub 5.5.0's (`jupyterhub/scopes.py` `scope_definitions`); the suite checks
every one against that table.
"""

from __future__ import annotations

from typing import Any

from pangeo_binder.config_shared import PushApp

# The owner's role: share their own servers (`shares!user`, which holds the access it grants),
# and look up who to share with by name: JupyterHub 5.5 refuses a share with a user or group
# whose name the sharer cannot read (apihandlers/shares.py). Names only, nothing else of them.
SHARER_SCOPES = ("shares!user", "read:users:name", "read:groups:name")

# What the server may do for whoever opens it (its OAuth client's tokens, which the browser's
# JupyterLab holds), beyond the access JupyterHub always includes: jupyter-collaboration's share
# dialog lists user and group names and manages the shares of this one server. JupyterHub
# intersects these with the visitor's own scopes, so a guest's token cannot share.
SERVER_CLIENT_SCOPES = ("shares!server", "read:users:name", "read:groups:name")


def sharing_user_scopes(enabled: bool) -> list[str]:
    """Scopes the `user` role adds for sharing (none when `hub.sharing` is false)."""
    return list(SHARER_SCOPES) if enabled else []


def sharing_server_token_scopes(enabled: bool) -> list[str]:
    """Scopes the notebook's own token ($JUPYTERHUB_API_TOKEN) adds: share this server, by code
    or by name, with one REST call from the notebook."""
    return list(SERVER_CLIENT_SCOPES) if enabled else []


def sharing_spawner_config(enabled: bool) -> dict[str, Any]:
    """`hub.config` entry for the scopes servers' OAuth clients may hand out (none when off)."""
    if not enabled:
        return {}
    return {"Spawner": {"oauth_client_allowed_scopes": list(SERVER_CLIENT_SCOPES)}}


# What gh-scoped-creds reads: the app's client id (the device flow needs no secret) and its page.
PUSH_APP_VARIABLES = ("GH_SCOPED_CREDS_CLIENT_ID", "GH_SCOPED_CREDS_APP_URL")


def push_app_environment(push_app: PushApp | None) -> dict[str, str]:
    """Environment of every notebook for `gh-scoped-creds`: which GitHub App to ask for a token
    (the device flow needs only the client id) and where users install it."""
    if push_app is None:
        return {}
    return dict(zip(PUSH_APP_VARIABLES, (push_app.client_id, push_app.url), strict=True))
