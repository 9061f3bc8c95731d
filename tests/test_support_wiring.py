"""The support stack reaches the hub's releases: with `monitoring` (both stack files) the
jupyterhub release knows the grafana and prometheus services, Prometheus' token may only read
metrics, the proxy may reach Grafana as well as its own routes, and Dask pods name their user;
without `monitoring` none of it is there."""

from __future__ import annotations

from conftest import release
from harness import DELETE, Run, run_program, stack_config, with_value
from pangeo_binder.hub.jupyterhub_values import service_routes, z2jh_egress
from pangeo_binder.support.values import (
    DASK_ANNOTATION_CONFIG,
    dask_values_piece,
    proxy_to_grafana,
    with_piece,
)


def test_with_piece_merges_maps_appends_lists_and_copies() -> None:
    values = {"hub": {"services": {"a": {"url": "x"}}}, "egress": [1], "n": 1}
    piece = {"hub": {"services": {"b": {"url": "y"}}}, "egress": [2], "n": 2}
    merged = with_piece(values, piece)
    assert merged == {
        "hub": {"services": {"a": {"url": "x"}, "b": {"url": "y"}}},
        "egress": [1, 2],
        "n": 2,
    }
    assert values == {"hub": {"services": {"a": {"url": "x"}}}, "egress": [1], "n": 1}


def test_the_hub_release_carries_the_support_piece(staging: Run) -> None:
    for cloud in ("gcp", "aws"):
        values = release(staging, cloud, "jupyterhub")["values"]
        services = values["hub"]["services"]
        assert services["grafana"]["url"] == "http://grafana.support.svc"
        assert services["grafana"]["oauth_client_id"] == "service-grafana"
        assert services["prometheus"]["api_token"]
        # The hub's own services are still there.
        assert {"binder", "dask-gateway"} <= set(services)
        roles = values["hub"]["loadRoles"]
        assert roles["prometheus-metrics"] == {
            "description": "Read the hub's metrics only",
            "scopes": ["read:metrics"],
            "services": ["prometheus"],
        }
        assert "user" in roles
        assert values["hub"].get("authenticatePrometheus", True) is not False
        own = z2jh_egress(service_routes(True, True))["egress"]
        egress = values["proxy"]["chp"]["networkPolicy"]["egress"]
        assert egress == [*own, proxy_to_grafana()]
        # The hub's too (its service check of Grafana's URL).
        hub_own = z2jh_egress(service_routes(True, True), kube_api=True)["egress"]
        assert values["hub"]["networkPolicy"]["egress"] == [*hub_own, proxy_to_grafana()]
        gateway = release(staging, cloud, "dask-gateway")["values"]["gateway"]["extraConfig"]
        assert (
            gateway[DASK_ANNOTATION_CONFIG]
            == dask_values_piece()["gateway"]["extraConfig"][DASK_ANNOTATION_CONFIG]
        )
        # The annotation wraps the options handler, so it must run after it: the chart writes
        # extraConfig entries in sorted key order (templates/gateway/configmap.yaml, sortAlpha).
        order = sorted(gateway)
        assert order.index(DASK_ANNOTATION_CONFIG) > order.index("10-options")


def test_without_monitoring_the_hub_has_no_support_piece() -> None:
    run = run_program("staging", with_value(stack_config("staging"), "monitoring", DELETE))
    for cloud in ("gcp", "aws"):
        values = release(run, cloud, "jupyterhub")["values"]
        assert not {"grafana", "prometheus"} & set(values["hub"]["services"])
        assert "prometheus-metrics" not in values["hub"]["loadRoles"]
        own = z2jh_egress(service_routes(True, True))["egress"]
        assert values["proxy"]["chp"]["networkPolicy"]["egress"] == own
        hub_own = z2jh_egress(service_routes(True, True), kube_api=True)["egress"]
        assert values["hub"]["networkPolicy"]["egress"] == hub_own
        gateway = release(run, cloud, "dask-gateway")["values"]["gateway"]["extraConfig"]
        assert DASK_ANNOTATION_CONFIG not in gateway
        assert not run.of_type("pangeo-binder:support:Support")
