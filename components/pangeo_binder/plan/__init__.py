"""The offline plan: what a stack builds per cloud, its Helm values and what it costs.

`python -m pangeo_binder.plan --stack staging [--compare REF] [--format text|markdown|json]`,
run in the Pulumi project (or with `--root DIR`). Modules: `runtime` runs a project under its
own mocks (`pangeo_binder.testing`), `tree` groups and redacts, `cost` prices, `diff` compares
two plans, `render` formats, `build` ties them together.
"""
