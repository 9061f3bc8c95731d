"""A kubeconfig for an EKS cluster that authenticates through `aws eks get-token`.

Only the endpoint and CA certificate go into it, so nothing short-lived is stored in state:
each use asks the AWS CLI for a fresh 15-minute token from the operator's (or CI's) AWS
credentials, which need an access entry on the cluster (`adminRoleArns`; `viewerRoleArns`
to read only).
"""

from __future__ import annotations

import json


def eks_kubeconfig(cluster_name: str, region: str, endpoint: str, ca_certificate: str) -> str:
    """Kubeconfig (JSON, which is valid YAML); `endpoint` is the https URL EKS reports and
    `ca_certificate` the base64 PEM."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_certificate},
                }
            ],
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                                "--output",
                                "json",
                            ],
                            "installHint": "Install AWS CLI v2 and sign in (aws sso login, or "
                            "credentials of a role listed in adminRoleArns).",
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
        },
        indent=2,
    )
