"""The hub layer: JupyterHub, Dask Gateway (and BinderHub) on any cluster a cloud stack built."""
