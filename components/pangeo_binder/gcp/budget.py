"""A billing budget that emails (and optionally publishes) at 50/90/100/120% of the amount."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from pangeo_binder.gcp.config import GcpBudget

THRESHOLDS = (0.5, 0.9, 1.0, 1.2)


def budget_amount(budget: GcpBudget) -> gcp.billing.BudgetAmountArgs:
    units, fraction = divmod(round(budget.monthly_usd * 100), 100)
    return gcp.billing.BudgetAmountArgs(
        specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
            currency_code=budget.currency, units=str(units), nanos=fraction * 10_000_000
        )
    )


def create_budget(
    name: str,
    budget: GcpBudget,
    *,
    project: str,
    display_name: str,
    opts: pulumi.ResourceOptions,
    after: Sequence[pulumi.Resource] = (),
) -> gcp.billing.Budget:
    """Alerts on actual spend, scoped to this project only. The project lookup waits for
    `after` (the APIs it calls), as an invoke takes no transformation."""
    channels = [
        gcp.monitoring.NotificationChannel(
            f"{name}-email-{index}",
            project=project,
            type="email",
            display_name=f"Budget alerts: {email}",
            labels={"email_address": email},
            opts=opts,
        )
        for index, email in enumerate(budget.emails)
    ]
    project_number = gcp.organizations.get_project_output(
        project_id=project,
        opts=pulumi.InvokeOutputOptions(
            parent=opts.parent, provider=opts.provider, depends_on=list(after)
        ),
    ).number
    return gcp.billing.Budget(
        name,
        billing_account=budget.billing_account,
        display_name=display_name,
        budget_filter=gcp.billing.BudgetBudgetFilterArgs(
            projects=[pulumi.Output.concat("projects/", project_number)]
        ),
        amount=budget_amount(budget),
        threshold_rules=[
            gcp.billing.BudgetThresholdRuleArgs(threshold_percent=t, spend_basis="CURRENT_SPEND")
            for t in THRESHOLDS
        ],
        all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
            monitoring_notification_channels=[channel.name for channel in channels],
            pubsub_topic=budget.pubsub_topic,
            disable_default_iam_recipients=False,
        ),
        opts=opts,
    )
