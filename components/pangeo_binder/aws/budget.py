"""An AWS Budgets cost budget that emails at 50/90/100/120% of the monthly amount."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from pangeo_binder.aws.config import AwsBudget

THRESHOLDS = (50, 90, 100, 120)


def budget_args(budget: AwsBudget, *, name: str) -> aws.budgets.BudgetArgs:
    """Alerts on actual spend of the whole account: cost-allocation tags only filter once an
    administrator activates them in Billing, and a filter on an inactive tag reports zero."""
    return aws.budgets.BudgetArgs(
        name=name,
        budget_type="COST",
        time_unit="MONTHLY",
        limit_amount=f"{budget.monthly_usd:.2f}",
        limit_unit="USD",
        notifications=[
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type="ACTUAL",
                threshold=float(threshold),
                threshold_type="PERCENTAGE",
                subscriber_email_addresses=list(budget.emails),
            )
            for threshold in THRESHOLDS
        ],
    )


def create_budget(
    name: str, budget: AwsBudget, *, budget_name: str, opts: pulumi.ResourceOptions
) -> aws.budgets.Budget:
    return aws.budgets.Budget(name, budget_args(budget, name=budget_name), opts=opts)
