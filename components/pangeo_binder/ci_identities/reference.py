"""`python -m pangeo_binder.ci_identities.reference`: the ci-identities config reference page,
generated from the model like the main stack's (docs/reference/ci-identities.md)."""

from __future__ import annotations

from pangeo_binder.ci_identities.config import NAMESPACE, CiIdentitiesConfig
from pangeo_binder.reference import _sections

HEADER = f"""# CI identities config reference

Generated from `pangeo_binder/ci_identities/config.py` by
`python -m pangeo_binder.ci_identities.reference`; do not edit by hand. Keys sit under the
`{NAMESPACE}:` namespace of `ci-identities/Pulumi.<stack>.yaml`. Unknown keys are errors;
every problem is reported at once, each with its key path. Setup:
[docs/howto/ci.md](../howto/ci.md#ci-identities-one-time-setup).
"""


def render() -> str:
    return HEADER + "\n" + "\n\n".join(_sections(CiIdentitiesConfig, NAMESPACE)) + "\n"


if __name__ == "__main__":
    print(render(), end="")
