"""Connection settings for the API server, resolved as kubectl resolves them.

Order: an explicit kubeconfig path; else ``$KUBECONFIG`` (files separated by ``os.pathsep``,
missing ones skipped, merged so that the first file to set a key wins: a named cluster, user or
context, and ``current-context``); else ``~/.kube/config``; else in-cluster
(``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and the service-account directory).

Relative file paths in a kubeconfig are relative to the file that defined the entry. A
``*-data`` field wins over its file field. Credentials are read per request: a token file (the
service-account token, or a user's ``tokenFile``) is re-read when the file changes on disk
(kubelet rotates it by swapping a symlink) and after a 401; an exec plugin's token
(client.authentication.k8s.io ExecCredential) is cached until its ``expirationTimestamp`` and
dropped after a 401. Every problem is a ``KubeconfigError`` naming the file, context or field.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from mirrorgate.errors import MirrorgateError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


class KubeconfigError(MirrorgateError):
    """The connection settings cannot be resolved; the message names the file, context or field."""


class Credentials(Protocol):
    """Where the ``Authorization`` header comes from."""

    async def authorization(self) -> str | None:
        """The header value for the next request."""

    def invalidate(self) -> bool:
        """Forget a cached credential after a 401; True when a retry may succeed."""


@dataclass
class StaticToken:
    """A bearer token written in the kubeconfig (``token``)."""

    token: str

    async def authorization(self) -> str | None:
        return f"Bearer {self.token}"

    def invalidate(self) -> bool:
        return False


@dataclass
class TokenFile:
    """A bearer token read from a file, re-read whenever the file changes (or after a 401)."""

    path: str
    _token: str | None = None
    _stamp: tuple[int, int, int] | None = None

    async def authorization(self) -> str | None:
        token = self.current()
        return f"Bearer {token}" if token else None

    def current(self) -> str:
        """The token, re-read when the file's inode, mtime or size changed."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise KubeconfigError(f"token file {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._token is None or stamp != self._stamp:
            self._token = Path(self.path).read_text().strip()
            self._stamp = stamp
        return self._token

    def invalidate(self) -> bool:
        self._token = None
        return True


@dataclass
class ExecPlugin:
    """A client-go credential plugin: runs ``command`` and caches the token until it expires."""

    exec_config: dict[str, Any]
    where: str
    _token: str | None = None
    _expires: datetime | None = None

    async def authorization(self) -> str | None:
        if self._token is None or (self._expires is not None and datetime.now(UTC) >= self._expires):
            await self._run()
        return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        self._token = None
        return True

    async def _run(self) -> None:
        from kubernetes_asyncio.config.config_exception import ConfigException
        from kubernetes_asyncio.config.exec_provider import ExecProvider
        from kubernetes_asyncio.config.kube_config import ConfigNode

        try:
            status = await ExecProvider(ConfigNode("exec", self.exec_config)).run()
        except ConfigException as exc:
            raise KubeconfigError(f"{self.where}: {exc}") from None
        except OSError as exc:
            raise KubeconfigError(f"{self.where}: exec: {exc}") from None
        token = status.get("token") if isinstance(status, dict) else None
        if not isinstance(token, str) or not token:
            raise KubeconfigError(
                f"{self.where}: exec plugin returned no status.token (client certificates unsupported)"
            )
        self._token = token
        stamp = status.get("expirationTimestamp")
        self._expires = _parse_time(stamp, self.where) if stamp else None


def _parse_time(value: object, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise KubeconfigError(f"{where}: exec plugin expirationTimestamp {value!r} is not RFC 3339") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Connection:
    """Everything needed to reach one API server."""

    server: str
    credentials: Credentials | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    origin: str = ""
    _temp: list[str] = field(default_factory=list, compare=False, repr=False)


def resolve(
    path: str | None = None,
    context: str | None = None,
    *,
    environ: dict[str, str] | None = None,
    home: str | None = None,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> Connection:
    """The connection kubectl would use for ``--kubeconfig PATH --context NAME``."""
    env = dict(os.environ) if environ is None else environ
    if path is not None:
        if not os.path.isfile(path):
            raise KubeconfigError(f"kubeconfig {path}: no such file")
        return from_kubeconfig([path], context)
    if env.get("KUBECONFIG"):
        listed = [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
        present = [p for p in listed if os.path.isfile(p)]
        if not present:
            raise KubeconfigError(f"$KUBECONFIG: none of {', '.join(listed)} exists")
        return from_kubeconfig(present, context)
    default = Path(home if home is not None else Path.home()) / ".kube" / "config"
    if default.is_file():
        return from_kubeconfig([str(default)], context)
    if env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT"):
        if context is not None:
            raise KubeconfigError(f"--context {context}: no kubeconfig found (in-cluster has no contexts)")
        return in_cluster(env, service_account_dir)
    raise KubeconfigError(f"no kubeconfig ({default} does not exist, $KUBECONFIG unset) and not in a cluster")


def in_cluster(environ: dict[str, str], service_account_dir: str = SERVICE_ACCOUNT_DIR) -> Connection:
    """The pod's service account: bearer token re-read on rotation, ``ca.crt``, ``namespace``."""
    host, port = environ["KUBERNETES_SERVICE_HOST"], environ["KUBERNETES_SERVICE_PORT"]
    token, ca = Path(service_account_dir) / "token", Path(service_account_dir) / "ca.crt"
    for required in (token, ca):
        if not required.is_file():
            raise KubeconfigError(f"in-cluster: {required} does not exist")
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Connection(
        server=f"https://{hostport}",
        credentials=TokenFile(str(token)),
        ca_file=str(ca),
        namespace=pod_namespace(service_account_dir),
        origin="in-cluster service account",
    )


def pod_namespace(service_account_dir: str = SERVICE_ACCOUNT_DIR) -> str:
    """The namespace this pod runs in (the service-account ``namespace`` file), else ``default``."""
    try:
        return (Path(service_account_dir) / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def load_merged(paths: list[str]) -> dict[str, Any]:
    """Merge kubeconfig files: the first file to define a name or ``current-context`` wins.

    Every named entry gets a ``_file`` key: relative paths inside it resolve against that file."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    for path in paths:
        doc = _read_yaml(path)
        if merged["current-context"] is None and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
        for section in ("clusters", "users", "contexts"):
            for entry in _entries(doc, section, path):
                merged[section].setdefault(entry["name"], {**entry, "_file": path})
    return merged


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path}: not YAML: {str(exc).splitlines()[0]}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path}: not a mapping")
    return doc


def _entries(doc: dict[str, Any], section: str, path: str) -> list[dict[str, Any]]:
    items = doc.get(section) or []
    if not isinstance(items, list):
        raise KubeconfigError(f"kubeconfig {path}: {section} is not a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise KubeconfigError(f"kubeconfig {path}: {section}[{i}].name is missing")
    return items


def from_kubeconfig(paths: list[str], context: str | None = None) -> Connection:
    """The connection of ``context`` (default: ``current-context``) in the merged files."""
    merged = load_merged(paths)
    files = ", ".join(paths)
    name = context or merged["current-context"]
    if not name:
        raise KubeconfigError(f"kubeconfig {files}: no current-context and no --context given")
    ctx = merged["contexts"].get(name)
    if ctx is None:
        raise KubeconfigError(f"kubeconfig {files}: context {name!r} not found")
    body = _section(ctx, "context", f"kubeconfig {ctx['_file']}: context {name!r}")
    cluster_name = body.get("cluster")
    cluster = merged["clusters"].get(cluster_name)
    if cluster is None:
        raise KubeconfigError(f"kubeconfig {ctx['_file']}: context {name!r}: cluster {cluster_name!r} not found")
    user = merged["users"].get(body.get("user")) if body.get("user") else None
    return _connection(name, cluster, user, str(body.get("namespace") or "default"))


def _section(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    body = entry.get(key)
    if not isinstance(body, dict):
        raise KubeconfigError(f"{where}: field {key} is missing or not a mapping")
    return body


def _connection(context: str, cluster: dict[str, Any], user: dict[str, Any] | None, namespace: str) -> Connection:
    cwhere = f"kubeconfig {cluster['_file']}: cluster {cluster['name']!r}"
    c = _section(cluster, "cluster", cwhere)
    server = c.get("server")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        raise KubeconfigError(f"{cwhere}: field server must be an http:// or https:// URL, got {server!r}")
    temp: list[str] = []
    base = os.path.dirname(os.path.abspath(cluster["_file"]))
    ca = _file_or_data(c, "certificate-authority", base, cwhere, temp)
    cert = key = None
    credentials: Credentials | None = None
    if user is not None:
        uwhere = f"kubeconfig {user['_file']}: user {user['name']!r}"
        u = _section(user, "user", uwhere)
        ubase = os.path.dirname(os.path.abspath(user["_file"]))
        cert = _file_or_data(u, "client-certificate", ubase, uwhere, temp)
        key = _file_or_data(u, "client-key", ubase, uwhere, temp)
        if (cert is None) != (key is None):
            raise KubeconfigError(f"{uwhere}: client-certificate and client-key must be given together")
        credentials = _credentials(u, ubase, uwhere)
    return Connection(
        server=server.rstrip("/"),
        credentials=credentials,
        ca_file=ca,
        cert_file=cert,
        key_file=key,
        insecure=bool(c.get("insecure-skip-tls-verify", False)),
        tls_server_name=c.get("tls-server-name"),
        namespace=namespace,
        origin=f"kubeconfig {cluster['_file']} context {context!r}",
        _temp=temp,
    )


def _credentials(u: dict[str, Any], base: str, where: str) -> Credentials | None:
    if "auth-provider" in u:
        raise KubeconfigError(f"{where}: auth-provider is not supported; use an exec credential plugin")
    if isinstance(u.get("exec"), dict):
        exec_config = u["exec"]
        if exec_config.get("apiVersion") not in EXEC_API_VERSIONS:
            raise KubeconfigError(f"{where}: exec.apiVersion must be one of {', '.join(EXEC_API_VERSIONS)}")
        if not exec_config.get("command"):
            raise KubeconfigError(f"{where}: exec.command is missing")
        command = str(exec_config["command"])
        if os.sep in command and not os.path.isabs(command):  # kubectl: relative to the kubeconfig file
            exec_config = {**exec_config, "command": os.path.join(base, command)}
        return ExecPlugin(exec_config, where)
    if u.get("token"):
        return StaticToken(str(u["token"]))
    if u.get("tokenFile"):
        return TokenFile(os.path.join(base, str(u["tokenFile"])))
    return None


def _file_or_data(obj: dict[str, Any], key: str, base: str, where: str, temp: list[str]) -> str | None:
    """The path of ``key``'s PEM: ``key-data`` (base64) goes to a private temporary file."""
    data = obj.get(f"{key}-data")
    if data:
        try:
            pem = base64.b64decode(str(data), validate=True)
        except ValueError:
            raise KubeconfigError(f"{where}: field {key}-data is not base64") from None
        fd, name = tempfile.mkstemp(prefix="mirrorgate-kube-", suffix=".pem")
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        temp.append(name)
        return name
    if obj.get(key):
        path = os.path.join(base, str(obj[key]))
        if not os.path.isfile(path):
            raise KubeconfigError(f"{where}: field {key}: {path} does not exist")
        return path
    return None


def remove_temp_files(conn: Connection) -> None:
    """Delete the temporary PEM files written for ``*-data`` fields (after the TLS context is built)."""
    for name in conn._temp:
        try:
            os.unlink(name)
        except OSError:
            pass
    conn._temp.clear()
