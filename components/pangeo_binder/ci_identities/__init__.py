"""The identities GitHub Actions assumes (ci-identities/): config, trust conditions, components."""
