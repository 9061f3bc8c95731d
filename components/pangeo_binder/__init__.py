"""pangeo-binder components: config model, per-cloud stacks and the hub layer.

Nothing in this package reads Pulumi config: `__main__.py` builds `StackConfig` and passes it in.
Importing the package is cheap; cloud SDKs are imported by the modules that build resources.
"""
