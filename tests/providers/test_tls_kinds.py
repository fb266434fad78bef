"""Secret, ConfigMap and BackendTLSPolicy as the API server returns them, through ``providers/objects``."""

from typing import Any

from mirrorgate.model.tls import BackendTLSPolicy, ConfigMap, Secret
from mirrorgate.providers.objects import decode_object

META = {"name": "x", "namespace": "n", "resourceVersion": "7", "managedFields": [{"manager": "kubectl"}]}


def test_a_secret_from_the_api_server_is_read_with_its_extra_fields_pruned() -> None:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": META,
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"},
        "immutable": True,
        "somethingNewer": {"a": 1},
    }
    obj, errors = decode_object(body, "kubernetes")
    assert errors == []
    assert isinstance(obj, Secret)
    assert obj.values() == {"tls.crt": b"crt", "tls.key": b"key"}


def test_a_config_map_keeps_its_ca_bundle() -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": META, "data": {"ca.crt": "PEM"}}
    obj, errors = decode_object(body, "kubernetes")
    assert errors == []
    assert isinstance(obj, ConfigMap)
    assert obj.data == {"ca.crt": "PEM"}


def test_a_backend_tls_policy_is_read_and_admitted() -> None:
    spec = {
        "targetRefs": [{"group": "", "kind": "Service", "name": "web", "sectionName": "https"}],
        "validation": {"wellKnownCACertificates": "System", "hostname": "web.example.com"},
    }
    body = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "BackendTLSPolicy", "metadata": META, "spec": spec}
    obj, errors = decode_object(body, "kubernetes")
    assert errors == []
    assert isinstance(obj, BackendTLSPolicy)
    assert obj.spec.target_refs[0].section_name == "https"


def test_a_tls_secret_without_its_key_is_refused_without_quoting_values() -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": META,
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "!"},
    }
    obj, errors = decode_object(body, "kubernetes")
    assert obj is None
    lines = [str(e) for e in errors]
    assert any("data[tls.key]: Required value" in line for line in lines)
    assert any(
        'data[tls.crt]: Invalid value: "<redacted>": illegal base64 data at input byte 0' in line for line in lines
    )
