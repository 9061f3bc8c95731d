"""A kubeconfig for a GKE cluster that authenticates through `gke-gcloud-auth-plugin`.

Only the endpoint and CA certificate go into it, so nothing short-lived is stored in state:
each use asks the plugin for a fresh token from the operator's (or CI's) gcloud credentials.
"""

from __future__ import annotations

import json


def gke_kubeconfig(cluster_name: str, endpoint: str, ca_certificate: str) -> str:
    """Kubeconfig (JSON, which is valid YAML) with exec auth; `ca_certificate` is base64 PEM."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": f"https://{endpoint}",
                        "certificate-authority-data": ca_certificate,
                    },
                }
            ],
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "installHint": "Install gke-gcloud-auth-plugin: gcloud components "
                            "install gke-gcloud-auth-plugin (or the OS package of that name).",
                            "provideClusterInfo": True,
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
