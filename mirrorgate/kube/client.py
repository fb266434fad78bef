"""A narrow Kubernetes API client: raw JSON in and out, typed errors carrying the apiserver Status.

Rules:

- The transport is kubernetes_asyncio's aiohttp REST client (TLS from the kubeconfig, proxies
  from the environment, a 2 MiB read buffer for large watch events), imported on ``connect``;
  bodies are decoded with msgspec into plain dicts, never into generated models.
- Every non-watch request has a total timeout (``request_timeout``). A watch has no read timeout
  (it is meant to stay open) but a client-side inactivity timeout: no line for longer than
  ``timeoutSeconds`` plus a grace means the connection died silently (``WatchStalled``).
- An error answer becomes an ``ApiError`` subclass built from the Status object the apiserver
  writes (``code``, ``reason``, ``message``); a watch ``ERROR`` event becomes the same. A 401
  with a credential that can be refreshed (token file, exec plugin) is retried once.
- ``list`` follows ``continue`` tokens; a 410 on a continue token restarts the list from the
  first page (the snapshot the token pointed at was compacted).
- Connection failures and timeouts raise ``Unreachable``; the caller decides about retrying.
"""

from __future__ import annotations

import asyncio
import builtins
import ssl
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from mirrorgate.errors import MirrorgateError
from mirrorgate.kube.kubeconfig import Connection, remove_temp_files

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
MAX_LINE = 64 << 20


class KubeError(MirrorgateError):
    """Base of the errors this package raises while talking to the API server."""


class Unreachable(KubeError):
    """The API server could not be reached, the request timed out or the stream broke."""


class WatchStalled(Unreachable):
    """A watch sent nothing for longer than its inactivity timeout."""


class ApiError(KubeError):
    """An answer with an error Status (``code``, ``reason``, ``message``)."""

    def __init__(self, code: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class Unauthorized(ApiError):
    """401: the credentials were refused."""


class NotFound(ApiError):
    """404: no such object (or resource)."""


class Conflict(ApiError):
    """409: stale ``resourceVersion`` on a write, or the object already exists."""


class Expired(ApiError):
    """410: the resourceVersion (or continue token) is older than the server's history."""


_BY_CODE: dict[int, type[ApiError]] = {401: Unauthorized, 404: NotFound, 409: Conflict, 410: Expired}


def api_error(code: int, status: object, retry_after: float | None = None) -> ApiError:
    """The typed error for an HTTP code and the Status body (anything else: a generic message)."""
    st = status if isinstance(status, dict) else {}
    code = int(st.get("code") or code)
    reason = str(st.get("reason") or "")
    message = str(st.get("message") or (status if isinstance(status, str) else ""))
    return _BY_CODE.get(code, ApiError)(code, reason, message, retry_after)


@dataclass(frozen=True)
class Resource:
    """One kind of object on the API server."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``plural.group``, as the apiserver names the resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY_CLASSES = Resource(GATEWAY_API, "v1", "gatewayclasses", "GatewayClass", namespaced=False)
GATEWAYS = Resource(GATEWAY_API, "v1", "gateways", "Gateway", namespaced=True)
HTTP_ROUTES = Resource(GATEWAY_API, "v1", "httproutes", "HTTPRoute", namespaced=True)
REFERENCE_GRANTS_V1 = Resource(GATEWAY_API, "v1", "referencegrants", "ReferenceGrant", namespaced=True)
REFERENCE_GRANTS_V1BETA1 = Resource(GATEWAY_API, "v1beta1", "referencegrants", "ReferenceGrant", namespaced=True)
SERVICES = Resource("", "v1", "services", "Service", namespaced=True)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", namespaced=True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)


class ListResult(NamedTuple):
    items: list[dict[str, Any]]
    resource_version: str


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


class KubeClient:
    """JSON verbs over one API server connection; create with ``await KubeClient.connect(conn)``."""

    def __init__(self, conn: Connection, rest: Any, request_timeout: float) -> None:
        self.conn = conn
        self._rest = rest
        self.request_timeout = request_timeout

    @classmethod
    async def connect(cls, conn: Connection, *, request_timeout: float = 30.0) -> KubeClient:
        from kubernetes_asyncio.client.configuration import Configuration
        from kubernetes_asyncio.client.rest import RESTClientObject

        cfg = Configuration(host=conn.server)
        cfg.ssl_ca_cert = conn.ca_file
        cfg.cert_file, cfg.key_file = conn.cert_file, conn.key_file
        cfg.verify_ssl = not conn.insecure
        cfg.tls_server_name = conn.tls_server_name
        try:
            rest = RESTClientObject(cfg)
        except (ssl.SSLError, OSError) as exc:
            raise KubeError(f"{conn.origin}: TLS settings: {exc}") from None
        finally:
            remove_temp_files(conn)
        return cls(conn, rest, request_timeout)

    async def close(self) -> None:
        await self._rest.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: object,
        content_type: str,
        client_timeout: Any,
    ) -> Any:
        import aiohttp

        headers = {"Accept": JSON, "Content-Type": content_type}
        if self.conn.credentials is not None:
            auth = await self.conn.credentials.authorization()
            if auth:
                headers["Authorization"] = auth
        try:
            return await self._rest.request(
                method,
                self.conn.server + path,
                query_params=query or None,
                headers=headers,
                body=body,
                _preload_content=False,
                _request_timeout=client_timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None

    async def _open(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: object = None,
        content_type: str = JSON,
        client_timeout: Any = None,
    ) -> Any:
        """Send, retrying once after a 401 when the credential can be refreshed; the open response."""
        import aiohttp

        timeout = client_timeout or aiohttp.ClientTimeout(total=self.request_timeout)
        resp = await self._send(method, path, query, body, content_type, timeout)
        if resp.status == 401 and self.conn.credentials is not None and self.conn.credentials.invalidate():
            resp.release()
            resp = await self._send(method, path, query, body, content_type, timeout)
        if resp.status >= 400:
            raise await self._error(method, path, resp)
        return resp

    async def _error(self, method: str, path: str, resp: Any) -> ApiError:
        try:
            raw = await resp.read()
        except Exception:
            raw = b""
        finally:
            resp.release()
        try:
            status: object = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            status = raw.decode(errors="replace").strip() or f"{method} {path}"
        retry = resp.headers.get("Retry-After")
        return api_error(resp.status, status, float(retry) if retry and retry.isdigit() else None)

    async def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: object = None,
        content_type: str = JSON,
    ) -> Any:
        """One request with a total timeout; the decoded JSON answer."""
        resp = await self._open(method, path, query, body, content_type)
        try:
            raw = await resp.read()
        except Exception as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        finally:
            resp.release()
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise Unreachable(f"{method} {path}: answer is not JSON: {exc}") from None

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> ListResult:
        """Every object (all pages); a 410 on a continue token restarts from the first page."""
        while True:
            try:
                return await self._list_pages(resource, namespace, label_selector, limit)
            except _ContinueExpired:
                continue

    async def _list_pages(
        self, resource: Resource, namespace: str | None, selector: str | None, limit: int
    ) -> ListResult:
        items: list[dict[str, Any]] = []
        query = {"limit": str(limit)}
        if selector:
            query["labelSelector"] = selector
        while True:
            try:
                page = await self.request("GET", resource.path(namespace), query)
            except Expired:
                if "continue" in query:
                    raise _ContinueExpired from None
                raise
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return ListResult(items, str(meta.get("resourceVersion", "")))
            query["continue"] = meta["continue"]

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int,
        allow_bookmarks: bool = True,
        label_selector: str | None = None,
        inactivity_timeout: float | None = None,
    ) -> WatchStream:
        """Open a watch; iterate the returned stream for ``(type, object)`` events.

        An error answer raises here (410: ``Expired``); an ``ERROR`` event raises from the
        iteration; silence for longer than ``inactivity_timeout`` (default ``timeout_seconds``
        + 10 %, at least 5 s) raises ``WatchStalled``. The stream ends when the server ends it."""
        import aiohttp

        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds)}
        if allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if label_selector:
            query["labelSelector"] = label_selector
        idle = inactivity_timeout or timeout_seconds + max(5.0, timeout_seconds / 10)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.request_timeout, sock_read=None)
        try:
            async with asyncio.timeout(self.request_timeout):  # bounds the wait for the response head
                resp = await self._open("GET", resource.path(namespace), query, client_timeout=timeout)
        except TimeoutError:
            raise Unreachable(f"watch {resource.qualified}: no answer within {self.request_timeout:g}s") from None
        return WatchStream(resp, idle, resource)

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", resource.path(namespace, name))
        return result

    async def create(self, resource: Resource, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        result: dict[str, Any] = await self.request("POST", resource.path(ns), body=obj)
        return result

    async def replace(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the object; its ``metadata.resourceVersion`` makes a stale write a ``Conflict``."""
        meta = obj["metadata"]
        result: dict[str, Any] = await self.request("PUT", resource.path(meta.get("namespace"), meta["name"]), body=obj)
        return result

    async def replace_status(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT on ``/status``: only the status is written, with the object's resourceVersion."""
        meta = obj["metadata"]
        path = resource.path(meta.get("namespace"), meta["name"], "status")
        result: dict[str, Any] = await self.request("PUT", path, body=obj)
        return result

    async def patch_status(
        self, resource: Resource, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) on ``/status``."""
        path = resource.path(namespace, name, "status")
        result: dict[str, Any] = await self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)
        return result

    async def served_versions(self, group: str) -> builtins.list[str]:
        """The versions of ``group`` the server serves, preferred first (discovery); [] when none."""
        if not group:
            doc = await self.request("GET", "/api")
            return [str(v) for v in doc.get("versions") or []]
        try:
            doc = await self.request("GET", f"/apis/{group}")
        except NotFound:
            return []
        preferred = (doc.get("preferredVersion") or {}).get("version")
        versions = [str(v.get("version")) for v in doc.get("versions") or []]
        return sorted(versions, key=lambda v: v != preferred)

    async def serves(self, resource: Resource) -> bool:
        """Whether discovery lists ``resource`` in its group version."""
        base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
        try:
            doc = await self.request("GET", base)
        except NotFound:
            return False
        return any(r.get("name") == resource.plural for r in doc.get("resources") or [])

    async def reference_grants(self) -> Resource | None:
        """ReferenceGrant as ``v1`` when served, else ``v1beta1``; None when neither is."""
        served = await self.served_versions(GATEWAY_API)
        for res in (REFERENCE_GRANTS_V1, REFERENCE_GRANTS_V1BETA1):
            if res.version in served and await self.serves(res):
                return res
        return None


class WatchStream:
    """The events of one open watch, read line by line; ``close()`` drops the connection."""

    def __init__(self, resp: Any, idle: float, resource: Resource) -> None:
        self._resp = resp
        self._idle = idle
        self._resource = resource

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        try:
            while True:
                line = await self._readline()
                if not line:
                    raise StopAsyncIteration
                if line.strip():
                    return _event(line, self._resource)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._resp.close()

    async def _readline(self) -> bytes:
        import aiohttp

        try:
            async with asyncio.timeout(self._idle):
                return bytes(await self._resp.content.readline(max_line_length=MAX_LINE))
        except TimeoutError:
            raise WatchStalled(f"watch {self._resource.qualified}: nothing received for {self._idle:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise Unreachable(f"watch {self._resource.qualified}: {type(exc).__name__}: {exc}") from None


class _ContinueExpired(Exception):
    """A continue token expired mid-list: start the list again."""


def _event(line: bytes, resource: Resource) -> tuple[str, dict[str, Any]]:
    try:
        ev = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise Unreachable(f"watch {resource.qualified}: bad event line: {exc}") from None
    kind, obj = str(ev.get("type")), ev.get("object") or {}
    if kind == "ERROR":
        raise api_error(int(obj.get("code") or 500), obj)
    return kind, obj
