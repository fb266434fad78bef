"""HTTPS listeners, BackendTLSPolicy and ExternalName through the file path, beside the goldens:
a Secret's two data forms, private keys kept out of every status, dump, view and report line."""

import base64
import json
from pathlib import Path

import msgspec
import pytest

from mirrorgate.ir.dump import table_to_builtins
from mirrorgate.model.meta import ObjectMeta
from mirrorgate.model.tls import Secret
from mirrorgate.providers.files import load_paths
from mirrorgate.serve.report import listener_lines, problems
from mirrorgate.status_view import list_view
from mirrorgate.translate import translate

TESTDATA = Path(__file__).parent / "testdata"


def test_string_data_wins_over_data_as_the_apiserver_merges_them() -> None:
    secret = Secret(
        api_version="v1",
        kind="Secret",
        metadata=ObjectMeta(name="s"),
        data={"a": base64.b64encode(b"from data").decode(), "b": base64.b64encode(b"only data").decode()},
        string_data={"a": "from stringData"},
    )
    assert secret.values() == {"a": b"from stringData", "b": b"only data"}
    assert "from" not in repr(secret)
    assert "redacted" in repr(secret)


@pytest.mark.parametrize("case", ["gateway-https-listener", "gateway-https-invalid-certificate-refs"])
def test_no_private_key_leaves_through_statuses_dump_view_or_report(case: str) -> None:
    loaded = load_paths([str(TESTDATA / f"{case}.in.yaml")])
    result = translate(loaded.snapshot)
    view = list_view(loaded.snapshot, result.statuses)
    texts = [
        msgspec.json.encode(result.statuses).decode(),
        json.dumps(table_to_builtins(result.table)),
        json.dumps(view),
        "\n".join(problems(view, result.table) + listener_lines(result.table)),
    ]
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert "BEGIN CERTIFICATE" not in text  # the view redacts every Secret value, the dump writes no PEM
    secrets = [i for i in view["items"] if i["kind"] == "Secret"]
    assert secrets
    assert all(set(s["data"].values()) == {"<redacted>"} for s in secrets if "data" in s)


def test_the_table_carries_the_key_for_the_data_plane() -> None:
    loaded = load_paths([str(TESTDATA / "gateway-https-listener.in.yaml")])
    table = translate(loaded.snapshot).table
    assert [c.source for c in table.certificates] == ["secret/default/b-cert", "secret/default/a-cert"]
    assert all("PRIVATE KEY" in c.key_pem and "BEGIN CERTIFICATE" in c.chain_pem for c in table.certificates)


def test_report_lines_name_https_listeners_and_policy_problems() -> None:
    for case, line in (
        ("gateway-https-listener", "0.0.0.0:443 HTTPS (secret/default/a-cert), hostname a.example.com"),
        (
            "backendtlspolicy-invalid-ca",
            "BackendTLSPolicy default/missing (ancestor Gateway default/gw): ResolvedRefs=False "
            "(InvalidCACertificateRef): ConfigMap default/nope not found.",
        ),
        (
            "gateway-https-invalid-certificate-refs",
            "Gateway default/tls-gateway listener mismatch: ResolvedRefs=False (InvalidCertificateRef): "
            "Secret default/mismatch: tls.key does not match tls.crt.",
        ),
        (
            "gateway-https-cross-namespace-certificate-ref",
            "Gateway default/tls-gateway listener not-granted: ResolvedRefs=False (RefNotPermitted): "
            "Certificate ref to Secret certs/b-cert not permitted by any ReferenceGrant.",
        ),
    ):
        loaded = load_paths([str(TESTDATA / f"{case}.in.yaml")])
        result = translate(loaded.snapshot)
        view = list_view(loaded.snapshot, result.statuses)
        lines = problems(view, result.table) + listener_lines(result.table)
        assert any(line in text for text in lines), (case, lines)


def test_an_external_name_backend_is_not_reported_as_without_endpoints() -> None:
    loaded = load_paths([str(TESTDATA / "httproute-externalname-backend.in.yaml")])
    result = translate(loaded.snapshot)
    assert problems(list_view(loaded.snapshot, result.statuses), result.table) == []
