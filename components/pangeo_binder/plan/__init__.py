"""The offline plan: what a stack builds per cloud, its Helm values and what it costs.

`python -m pangeo_binder.plan --stack staging [--compare REF] [--format text|markdown|json]`.
Modules: `runtime` runs a checkout under mocks, `tree` groups and redacts, `cost` prices,
`diff` compares two plans, `render` formats, `build` ties them together.
"""
