"""Connection settings resolved as kubectl does, each auth kind exercised against the fake over HTTP(S)."""

import base64
import os
import ssl
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from mirrorgate.kube.client import LEASES, KubeClient, NotFound, Unreachable
from mirrorgate.kube.kubeconfig import KubeconfigError, StaticToken, TokenFile, pod_namespace, resolve
from tests.kube.fakeapi import FakeApiServer


def config(clusters: dict[str, Any], users: dict[str, Any], contexts: dict[str, tuple[str, str]], **top: Any) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
        **top,
    }
    return yaml.safe_dump(doc)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


async def reachable(conn: Any) -> None:
    """One authenticated round trip: a 404 for a missing Lease proves TLS and auth passed."""
    async with await KubeClient.connect(conn, request_timeout=5) as client:
        with pytest.raises(NotFound):
            await client.get(LEASES, "none", "default")


def test_kubeconfig_list_merges_first_file_wins(tmp_path: Path) -> None:
    first = write(
        tmp_path / "one" / "config",
        config(
            {"c": {"server": "http://first:1"}},
            {"u": {"tokenFile": "tok"}},
            {"x": ("c", "u")},
            **{"current-context": "x"},
        ),
    )
    second = write(
        tmp_path / "two" / "config",
        config(
            {"c": {"server": "http://second:2"}, "d": {"server": "http://d:3"}},
            {"u": {"token": "ignored"}, "v": {"token": "v-token"}},
            {"x": ("d", "v"), "y": ("d", "v")},
            **{"current-context": "y"},
        ),
    )
    env = {"KUBECONFIG": os.pathsep.join([str(tmp_path / "missing"), first, second])}
    conn = resolve(environ=env)
    assert conn.server == "http://first:1"
    assert isinstance(conn.credentials, TokenFile)
    assert conn.credentials.path == str(tmp_path / "one" / "tok")  # relative to the file that defined it
    other = resolve(environ=env, context="y")
    assert other.server == "http://d:3"
    assert isinstance(other.credentials, StaticToken)


def test_explicit_path_beats_kubeconfig_env_and_home_beats_in_cluster(tmp_path: Path) -> None:
    one = write(
        tmp_path / "a", config({"c": {"server": "http://a:1"}}, {}, {"x": ("c", "")}, **{"current-context": "x"})
    )
    env = {"KUBECONFIG": "/nonexistent", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert resolve(one, environ=env).server == "http://a:1"
    write(tmp_path / "home" / ".kube" / "config", Path(one).read_text())
    env.pop("KUBECONFIG")
    conn = resolve(environ=env, home=str(tmp_path / "home"))
    assert conn.server == "http://a:1"
    assert conn.credentials is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not yaml", "not YAML"),
        ("- a list", "not a mapping"),
        (config({}, {}, {}), "no current-context"),
        (config({}, {}, {"x": ("c", "u")}, **{"current-context": "x"}), "cluster 'c' not found"),
        (config({"c": {"server": "ftp://x"}}, {}, {"x": ("c", "")}, **{"current-context": "x"}), "field server"),
        (
            config({"c": {"server": "http://x"}}, {"u": {"client-certificate": "nope.pem"}}, {"x": ("c", "u")}),
            "no current-context",
        ),
        (
            config(
                {"c": {"server": "https://x", "certificate-authority": "nope.pem"}},
                {},
                {"x": ("c", "")},
                **{"current-context": "x"},
            ),
            "certificate-authority",
        ),
        (
            config(
                {"c": {"server": "http://x"}},
                {"u": {"auth-provider": {"name": "gcp"}}},
                {"x": ("c", "u")},
                **{"current-context": "x"},
            ),
            "auth-provider",
        ),
        (
            config(
                {"c": {"server": "http://x"}},
                {"u": {"exec": {"apiVersion": "v9", "command": "x"}}},
                {"x": ("c", "u")},
                **{"current-context": "x"},
            ),
            "exec.apiVersion",
        ),
        ("clusters: 3\n", "clusters is not a list"),
    ],
)
def test_malformed_kubeconfigs_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "kc", text)
    with pytest.raises(KubeconfigError) as err:
        resolve(path, environ={})
    assert message in str(err.value)
    assert path in str(err.value)


def test_missing_sources_and_unknown_context(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="no such file"):
        resolve(str(tmp_path / "nope"), environ={})
    with pytest.raises(KubeconfigError, match=r"none of .* exists"):
        resolve(environ={"KUBECONFIG": str(tmp_path / "nope")})
    with pytest.raises(KubeconfigError, match="not in a cluster"):
        resolve(environ={}, home=str(tmp_path))
    path = write(tmp_path / "kc", config({"c": {"server": "http://x"}}, {}, {"x": ("c", "")}))
    with pytest.raises(KubeconfigError, match="context 'y' not found"):
        resolve(path, "y", environ={})


def test_pod_namespace(tmp_path: Path) -> None:
    assert pod_namespace(str(tmp_path)) == "default"
    (tmp_path / "namespace").write_text("gw-system\n")
    assert pod_namespace(str(tmp_path)) == "gw-system"


async def test_token_file_is_reread_when_it_rotates_and_after_a_401(api: FakeApiServer, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one-1")
    api.tokens = {"one-1"}
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kc", user={"tokenFile": "token"})), environ={})
    async with await KubeClient.connect(conn, request_timeout=5) as client:
        with pytest.raises(NotFound):
            await client.get(LEASES, "x", "default")
        token.write_text("two-22")  # rotated: a new size and mtime
        api.tokens = {"two-22"}
        with pytest.raises(NotFound):
            await client.get(LEASES, "x", "default")
        stamp = token.stat()
        token.write_text("three3")  # same size, mtime put back: only the 401 reveals the change
        os.utime(token, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        api.tokens = {"three3"}
        with pytest.raises(NotFound):
            await client.get(LEASES, "x", "default")
    statuses = [p for _, p in api.requests]
    assert len(statuses) == 4  # one retry, after the 401


EXEC_PLUGIN = textwrap.dedent(
    """
    import json, os, sys
    api_version, count_file, token, expires = sys.argv[1:5]
    with open(count_file, "a") as f:
        f.write("x")
    info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
    assert info["kind"] == "ExecCredential"
    status = {"token": token}
    if expires != "-":
        status["expirationTimestamp"] = expires
    print(json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "status": status}))
    """
)


@pytest.mark.parametrize("api_version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
@pytest.mark.parametrize("expires_in", [3600, -60])
async def test_exec_plugin_token_cached_until_expiry(
    api: FakeApiServer, tmp_path: Path, api_version: str, expires_in: int
) -> None:
    script = write(tmp_path / "plugin.py", EXEC_PLUGIN)
    count = tmp_path / "count"
    expires = (datetime.now(UTC) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    user = {
        "exec": {
            "apiVersion": api_version,
            "command": sys.executable,
            "args": [script, api_version, str(count), api.token, expires],
        }
    }
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kc", user=user)), environ={})
    for _ in range(3):
        await reachable(conn)
    assert len(count.read_text()) == (1 if expires_in > 0 else 3)


async def test_exec_plugin_failure_is_a_clear_error(api: FakeApiServer, tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": ["-c", "import sys; sys.exit('no login')"],
        }
    }
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kc", user=user)), environ={})
    with pytest.raises(KubeconfigError, match="no login"):
        await reachable(conn)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_api(ca: trustme.CA) -> AsyncIterator[FakeApiServer]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    async with FakeApiServer(ssl_context=ctx) as server:
        yield server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_client_certificate_and_ca_data_over_tls(tls_api: FakeApiServer, ca: trustme.CA, tmp_path: Path) -> None:
    client_cert = ca.issue_cert("mirrorgate.client.example")
    user = {
        "client-certificate-data": b64(client_cert.cert_chain_pems[0].bytes()),
        "client-key-data": b64(client_cert.private_key_pem.bytes()),
    }
    cluster = {"certificate-authority-data": b64(ca.cert_pem.bytes())}
    conn = resolve(str(tls_api.write_kubeconfig(tmp_path / "kc", user=user, cluster=cluster)), environ={})
    temp = list(conn._temp)
    assert len(temp) == 3
    await reachable(conn)
    assert not any(map(os.path.exists, temp))  # the PEM copies are gone once loaded


async def test_ca_file_insecure_and_untrusted(tls_api: FakeApiServer, ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    await reachable(
        resolve(str(tls_api.write_kubeconfig(tmp_path / "a", cluster={"certificate-authority": "ca.crt"})), environ={})
    )
    await reachable(
        resolve(str(tls_api.write_kubeconfig(tmp_path / "b", cluster={"insecure-skip-tls-verify": True})), environ={})
    )
    untrusted = resolve(str(tls_api.write_kubeconfig(tmp_path / "c")), environ={})
    async with await KubeClient.connect(untrusted, request_timeout=5) as client:
        with pytest.raises(Unreachable, match="certificate"):
            await client.get(LEASES, "x", "default")


async def test_in_cluster_service_account(tls_api: FakeApiServer, ca: trustme.CA, tmp_path: Path) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    ca.cert_pem.write_to_path(str(sa / "ca.crt"))
    (sa / "token").write_text(tls_api.token)
    (sa / "namespace").write_text("gw-system")
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(tls_api.port)}
    conn = resolve(environ=env, home=str(tmp_path), service_account_dir=str(sa))
    assert conn.namespace == "gw-system"
    assert conn.server == f"https://127.0.0.1:{tls_api.port}"
    await reachable(conn)
    with pytest.raises(KubeconfigError, match="token"):
        resolve(environ=env, home=str(tmp_path), service_account_dir=str(tmp_path / "empty"))
