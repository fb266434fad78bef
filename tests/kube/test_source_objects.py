"""providers/objects.py: an object from the API server decodes as the same object from a file."""

from pathlib import Path
from typing import Any

import yaml

from mirrorgate.model.core import EndpointSlice, Service
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.providers.files import load_paths
from mirrorgate.providers.objects import DecodeCache, build_snapshot, clean, decode_object

ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {
        "name": "r",
        "namespace": "default",
        "generation": 3,
        "resourceVersion": "12",
        "uid": "u-1",
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]},
    "status": {"parents": [{"controllerName": "x", "parentRef": {"name": "gw"}, "conditions": []}]},
}


def test_a_route_from_the_api_equals_the_same_route_from_a_file(tmp_path: Path) -> None:
    obj, errors = decode_object(ROUTE, "kubernetes")
    assert errors == []
    assert isinstance(obj, HTTPRoute)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in ROUTE.items() if k != "status"}))
    from_file = load_paths([str(path)]).snapshot.http_routes[0]
    assert from_file == obj
    assert obj.metadata.generation == 3


def test_an_invalid_route_has_the_file_error_text_with_the_origin(tmp_path: Path) -> None:
    bad = {**ROUTE, "spec": {**ROUTE["spec"], "hostnames": ["bad_host"]}}
    obj, errors = decode_object(bad, "kubernetes")
    assert obj is None
    assert errors
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(bad))
    file_errors = load_paths([str(path)]).errors
    assert [str(e).replace(str(path), "kubernetes") for e in file_errors] == [str(e) for e in errors]
    assert str(errors[0]).startswith("kubernetes: HTTPRoute default/r: spec.hostnames[0]")


def test_core_kinds_are_pruned_to_the_model() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default", "resourceVersion": "5"},
        "spec": {
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}},
            "allocateLoadBalancerNodePorts": True,
            "clusterIP": "10.0.0.1",
        },
        "status": {"loadBalancer": {}},
    }
    obj, errors = decode_object(svc, "kubernetes")
    assert errors == []
    assert isinstance(obj, Service)
    assert obj.spec.cluster_ip == "10.0.0.1"
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "s-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"], "deprecatedTopology": {"a": "b"}, "conditions": {"ready": True}}],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }
    slice_, errors = decode_object(eps, "kubernetes")
    assert errors == []
    assert isinstance(slice_, EndpointSlice)
    assert slice_.endpoints[0].addresses == ("10.1.0.1",)


def test_clean_drops_status_and_server_metadata() -> None:
    cleaned = clean(ROUTE)
    assert "status" not in cleaned
    assert cleaned["metadata"] == {"name": "r", "namespace": "default", "generation": 3, "uid": "u-1"}
    assert "status" in ROUTE  # the input is not changed


def test_build_snapshot_leaves_refused_objects_out_and_names_them() -> None:
    bad = {**ROUTE, "metadata": {**ROUTE["metadata"], "name": "bad"}, "spec": {"hostnames": ["bad_host"]}}
    result = build_snapshot([ROUTE, bad], "kubernetes")
    assert [r.metadata.name for r in result.snapshot.http_routes] == ["r"]
    (refused,) = result.refused
    assert (refused.key.kind, refused.key.namespace, refused.key.name, refused.generation) == (
        "HTTPRoute",
        "default",
        "bad",
        3,
    )
    assert "spec.hostnames[0]" in refused.message


def test_the_decode_cache_reuses_an_unchanged_version_and_forgets_vanished_objects() -> None:
    cache = DecodeCache()
    first = build_snapshot([ROUTE], "kubernetes", cache)
    (entry,) = cache.entries.values()
    again = build_snapshot([ROUTE], "kubernetes", cache)
    assert again.snapshot == first.snapshot
    assert next(iter(cache.entries.values())) is entry  # not decoded again
    newer = {**ROUTE, "metadata": {**ROUTE["metadata"], "resourceVersion": "13"}}
    build_snapshot([newer], "kubernetes", cache)
    assert [v for _, v in cache.entries] == ["13"]
    build_snapshot([], "kubernetes", cache)
    assert cache.entries == {}
