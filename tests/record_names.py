"""Record what a stack's program registers that must never change by accident: every URN, and
the physical name of every resource whose name is unique in a project, an account or the
world (service accounts, buckets, clusters, repositories, roles, ...).

    python tests/record_names.py --root CHECKOUT --stack staging > tests/data/urns-staging.txt

Run with the checkout's own package first on PYTHONPATH (`CHECKOUT/components`).
`tests/test_names.py` compares the program of this checkout with the recorded files, and
checks that two stacks of one environment share no such name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

# The input that is the resource's name where the cloud requires it to be unique (in a GCP
# project, an AWS account and region, or globally for buckets), by resource type.
PHYSICAL_NAMES: dict[str, tuple[str, ...]] = {
    "gcp:serviceaccount/account:Account": ("accountId",),
    "gcp:storage/bucket:Bucket": ("name",),
    "gcp:container/cluster:Cluster": ("name",),
    "gcp:artifactregistry/repository:Repository": ("repositoryId",),
    "gcp:secretmanager/secret:Secret": ("secretId",),
    "gcp:compute/address:Address": ("name",),
    "gcp:compute/globalAddress:GlobalAddress": ("name",),
    "gcp:compute/network:Network": ("name",),
    "gcp:compute/subnetwork:Subnetwork": ("name",),
    "gcp:compute/router:Router": ("name",),
    "gcp:billing/budget:Budget": ("displayName",),
    "aws:iam/role:Role": ("name",),
    "aws:iam/policy:Policy": ("name",),
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:eks/cluster:Cluster": ("name",),
    "aws:kms/alias:Alias": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name",),
    "aws:secretsmanager/secret:Secret": ("name",),
    "aws:ecr/pullThroughCacheRule:PullThroughCacheRule": ("ecrRepositoryPrefix",),
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate": ("prefix",),
    "aws:ecr/repository:Repository": ("name",),
    "aws:budgets/budget:Budget": ("name",),
}


def physical_names(registrations: list[Any]) -> list[tuple[str, str, str]]:
    """(type, input, value) of each unique-name input the program registers."""
    found = []
    for r in registrations:
        for field in PHYSICAL_NAMES.get(r.type, ()):
            value = r.inputs.get(field)
            if isinstance(value, str) and value:
                found.append((r.type, field, value))
    return found


def lines(registrations: list[Any]) -> list[str]:
    """One line per URN (sorted), then one per physical name: `name <type> <input>=<value>`."""
    urns = sorted(f"urn {r.urn}" for r in registrations)
    names = sorted(f"name {t} {f}={v}" for t, f, v in physical_names(registrations))
    return [*urns, *names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--stack", required=True)
    args = parser.parse_args()
    from pangeo_binder.testing import Project

    run = Project(args.root.resolve()).run_program(args.stack)
    sys.stdout.write("\n".join(lines(run.registrations)) + "\n")


if __name__ == "__main__":
    main()
