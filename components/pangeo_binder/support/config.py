"""The `monitoring` section of the stack config: Prometheus, Grafana, OpenCost and alerts on
every cloud's cluster (one setting for all clouds: each cluster gets its own copy)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from pangeo_binder.config_shared import Model

EMAIL = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
HOST_PORT = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]


class GrafanaSettings(Model):
    """Who may log in to Grafana (at `/services/grafana/` of each hub's domain)."""

    login: Literal["jupyterhub"] = Field(
        "jupyterhub",
        description="`jupyterhub`: log in through the hub (its OAuth provider); the hub's admins "
        "may, and the users in `viewers`. Anonymous access is always off.",
    )
    viewers: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Hub users besides the hub's admins who may log in to Grafana (as viewers). "
        "A hub without admins needs at least one, or nobody could log in.",
    )


class AlertChannel(Model):
    """Where firing alerts are sent (through Alertmanager, installed only for this)."""

    type: Literal["email", "webhook"] = Field(
        description="`webhook`: POST to the URL in `secrets.monitoring.alertWebhookUrl` (Slack, "
        "Matrix or any Alertmanager webhook receiver); `email`: through `smarthost` with the "
        "password in `secrets.monitoring.smtpPassword`."
    )
    to: EMAIL | None = Field(None, description="email: the address alerts go to.")
    from_: EMAIL | None = Field(None, alias="from", description="email: the sender address.")
    smarthost: HOST_PORT | None = Field(None, description="email: the SMTP server, `host:port`.")
    username: str | None = Field(None, description="email: the SMTP login (default: `from`).")

    @model_validator(mode="after")
    def _email_fields(self) -> AlertChannel:
        if self.type == "email":
            missing = [k for k in ("to", "from", "smarthost") if getattr(self, _field(k)) is None]
            if missing:
                raise ValueError(f"an email channel needs {', '.join(missing)}")
        return self


def _field(key: str) -> str:
    return "from_" if key == "from" else key


class AlertSettings(Model):
    """The alert rules are always installed and shown in Grafana; `channel` also sends them."""

    channel: AlertChannel | None = Field(
        None, description="Optional delivery of firing alerts (email or webhook)."
    )


class MonitoringSettings(Model):
    """`pangeo-binder:monitoring`: the support stack in the `support` namespace of every
    cluster, Grafana at `/services/grafana/` of each hub (docs/howto/monitoring.md)."""

    retention_days: int = Field(
        15,
        ge=1,
        description="Days of metrics Prometheus keeps (at least one); it also stops at 80% of "
        "the volume, whichever comes first.",
    )
    volume_size_gb: int = Field(
        20, ge=5, le=1000, description="Prometheus' volume (a Retain storage class), in GB."
    )
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)


class MonitoringSecrets(Model):
    """`secrets.monitoring`: the alert channel's secret, set with --secret."""

    alert_webhook_url: SecretStr | None = Field(
        None, description="The webhook URL alerts are posted to (it often embeds a token)."
    )
    smtp_password: SecretStr | None = Field(None, description="The SMTP password for email.")


CHANNEL_SECRET = {"webhook": "alertWebhookUrl", "email": "smtpPassword"}
