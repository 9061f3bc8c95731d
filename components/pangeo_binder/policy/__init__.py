"""Guard rails every change passes: the rules (`rules`), the stack's declarations they need
(`context`), and the offline checker (`python -m pangeo_binder.policy check PLAN.json`).
The CrossGuard pack in `policies/` runs the same rules inside `pulumi preview`."""

from pangeo_binder.policy.rules import RULES, Context, Resource, Rule, Violation, check_stack

__all__ = ["RULES", "Context", "Resource", "Rule", "Violation", "check_stack"]
