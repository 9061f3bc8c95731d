"""Generated sections of the docs: a page's text between two marker lines is rewritten by a
command (the cost page by `python -m pangeo_binder.plan.docs`, the user guide's link example by
`python -m pangeo_binder.links --update-docs`), and a drift test compares it with the page."""

from __future__ import annotations

from pathlib import Path

# The stacks the generated sections are computed from, relative to the checkout: the test
# suite's own copies of the project's staging and prod (tests/stacks/README.md), never the
# checkout's `Pulumi.*.yaml`. So the pages describe the project's reference stacks in every
# checkout, a fork with stacks of its own included, and their drift tests pass there; an
# operator's own figures come from `make plan STACK=NAME`.
REFERENCE_STACKS = Path("tests") / "stacks"


def replace_section(page: str, begin: str, end: str, generated: str) -> str | None:
    """`page` with the text from `begin` to `end` replaced by `generated` (which carries both
    markers), keeping what follows one blank line below; None when a marker is missing."""
    if begin not in page or end not in page:
        return None
    head, rest = page.split(begin, 1)
    tail = rest.split(end, 1)[1].lstrip("\n")
    return head + generated + (("\n" + tail) if tail else "")
