"""An in-process fake Kubernetes API server over real HTTP on 127.0.0.1 (aiohttp.web).

Start and stop it on the test's loop (``async with FakeApiServer() as api``); ``write_kubeconfig``
points a client, or a ``mirrorgate run --kubernetes`` child process, at it with a bearer token.
The store semantics live in ``fakestore.py``; this module adds the HTTP surface:

- discovery (``/api``, ``/apis``, ``/apis/<group>``, ``/apis/<group>/<version>``, ``/api/v1``),
  with ReferenceGrant served in the versions chosen at construction;
- list (``limit``/``continue``, label selectors), get, create, PUT, PUT and merge PATCH on
  ``/status``, delete; errors as the apiserver's ``Status`` objects;
- watch from an RV: history replay, then live events; 410 at the start for an RV older than the
  history window; BOOKMARK events on a tick when asked; ``timeoutSeconds`` ends the stream;
- bearer-token auth (or a client certificate on the TLS variant), 401 otherwise;
- a write log, and faults: cut or stall open watches, end them with an ERROR 410, compact the
  history, answer the next N requests with an error, delay answers, go down and come back up on
  the same port.

Paginated lists are not a consistent snapshot (later pages read the current state); a continue
token whose list RV fell out of the history window is 410 Expired, as on a real server.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml
from aiohttp import web

from tests.kube.fakestore import Event, Kind, Obj, StatusError, Store, default_kinds, expired, matches

TOKEN = "fake-token"


@dataclass
class Write:
    verb: str
    path: str
    body: Any


@dataclass
class Fault:
    code: int
    reason: str
    message: str
    retry_after: int | None = None


@dataclass(eq=False)
class Watcher:
    kind: Kind
    namespace: str | None
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    released: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Route:
    kind: Kind
    version: str
    namespace: str | None
    name: str | None
    sub: str | None


class FakeApiServer:
    def __init__(
        self,
        *,
        token: str = TOKEN,
        history: int = 1000,
        reference_grant_versions: tuple[str, ...] = ("v1",),
        bookmark_interval: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.tokens = {token}
        self.token = token
        self.store = Store(history)
        self.kinds = default_kinds(reference_grant_versions)
        self.bookmark_interval = bookmark_interval
        self.ssl_context = ssl_context
        self.writes: list[Write] = []
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.delay = 0.0
        self.hooks: list[Callable[[web.Request], None]] = []
        self.watchers: set[Watcher] = set()
        self.watch_started = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    # ---- lifecycle

    async def __aenter__(self) -> FakeApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def down(self) -> None:
        """Stop accepting connections and drop the open ones (``up()`` restarts on the same port)."""
        await self.stop()

    async def up(self) -> None:
        await self.start(self.port)

    def write_kubeconfig(self, path: Path | str, *, user: Obj | None = None, cluster: Obj | None = None) -> Path:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url, **(cluster or {})}}],
            "users": [{"name": "fake", "user": user if user is not None else {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        Path(path).write_text(yaml.safe_dump(doc))
        return Path(path)

    # ---- direct access for tests (no HTTP; events are recorded as for API writes)

    def kind(self, plural: str) -> Kind:
        return next(k for k in self.kinds if k.plural == plural)

    def put(self, plural: str, obj: Obj) -> Obj:
        """Create or replace (unconditionally) an object."""
        kind, meta = self.kind(plural), obj["metadata"]
        ns = meta.get("namespace", "") if kind.namespaced else ""
        if (kind.group, kind.plural, ns, meta["name"]) in self.store.objects:
            body = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
            return self.store.replace(kind, ns, meta["name"], body)
        return self.store.create(kind, ns, obj)

    def delete(self, plural: str, name: str, namespace: str = "") -> Obj:
        return self.store.delete(self.kind(plural), namespace, name)

    def get(self, plural: str, name: str, namespace: str = "") -> Obj:
        return self.store.get(self.kind(plural), namespace, name)

    # ---- faults

    def fail_next(self, n: int, code: int = 500, reason: str = "InternalError", retry_after: int | None = None) -> None:
        self.faults.extend(Fault(code, reason, f"injected {code}", retry_after) for _ in range(n))

    def cut_watches(self) -> None:
        """Drop every open watch connection without a clean end."""
        for w in list(self.watchers):
            w.queue.put_nowait("CUT")
            w.released.set()

    def stall_watches(self) -> None:
        """Open watches go silent without closing (``timeoutSeconds`` no longer ends them)."""
        for w in self.watchers:
            w.queue.put_nowait("STALL")

    def expire_watches(self) -> None:
        """Open watches get an ERROR event with code 410, then end."""
        for w in self.watchers:
            w.queue.put_nowait("EXPIRE")

    def send_bookmarks(self) -> None:
        for w in self.watchers:
            w.queue.put_nowait("BOOKMARK")

    def compact(self) -> None:
        self.store.compact()

    # ---- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        for hook in list(self.hooks):
            hook(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            if not self._authorized(request):
                raise StatusError(401, "Unauthorized", "Unauthorized")
            if self.faults:
                fault = self.faults.pop(0)
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                return answer(StatusError(fault.code, fault.reason, fault.message).status(), fault.code, headers)
            discovery = self._discovery(request.path)
            if discovery is not None:
                return answer(discovery)
            return await self._resource(request)
        except StatusError as exc:
            return answer(exc.status(), exc.code)

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in self.tokens:
            return True
        return request.transport is not None and bool(request.transport.get_extra_info("peercert"))

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for k in self.kinds:
            for v in k.versions:
                if v not in groups.setdefault(k.group, []):
                    groups[k.group].append(v)
        return groups

    def _discovery(self, path: str) -> Obj | None:
        parts = path.strip("/").split("/")
        groups = self._groups()
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            named = [group_doc(g, vs) for g, vs in groups.items() if g]
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": named}
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in groups:
                raise StatusError(404, "NotFound", "the server could not find the requested resource")
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1], groups[parts[1]])}
        if (parts[0] == "api" and len(parts) == 2) or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            return self._resource_list(group, version)
        return None

    def _resource_list(self, group: str, version: str) -> Obj:
        kinds = [k for k in self.kinds if k.group == group and version in k.versions]
        if not kinds:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        resources = []
        for k in kinds:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            resources.append({"name": k.plural, "namespaced": k.namespaced, "kind": k.kind, "verbs": verbs})
            if k.status:
                sub = {"name": f"{k.plural}/status", "namespaced": k.namespaced, "kind": k.kind}
                resources.append({**sub, "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}

    def _route(self, path: str) -> Route:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and self._find(group, version, rest[2], namespaced=True):
            namespace, rest = rest[1], rest[2:]
        kind = self._find(group, version, rest[0], namespaced=namespace is not None or None)
        if kind is None or len(rest) > 3:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return Route(kind, version, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)

    def _find(self, group: str, version: str, plural: str, namespaced: bool | None) -> Kind | None:
        for k in self.kinds:
            if k.group == group and version in k.versions and k.plural == plural:
                if namespaced is None or k.namespaced == namespaced:
                    return k
        return None

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        route = self._route(request.path)
        q = request.query
        if request.method == "GET" and route.name is None:
            if q.get("watch") in ("true", "1"):
                return await self._watch(request, route)
            return answer(self._list(route, q))
        ns = route.namespace or ""
        if request.method == "GET" and route.name:
            return answer(self._out(route, self.store.get(route.kind, ns, route.name)))
        body = await request.json() if request.can_read_body else None
        self.writes.append(Write(request.method, request.path, body))
        return answer(self._out(route, self._write(request, route, ns, body)), 201 if request.method == "POST" else 200)

    def _write(self, request: web.Request, route: Route, ns: str, body: Any) -> Obj:
        kind, name, method = route.kind, route.name, request.method
        if method == "POST" and name is None:
            return self.store.create(kind, ns, body)
        if name is None:
            raise StatusError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")
        if method == "DELETE" and route.sub is None:
            return self.store.delete(kind, ns, name)
        if method == "PUT":
            check_name(body, name)
            if route.sub == "status":
                return self.store.replace_status(kind, ns, name, body)
            return self.store.replace(kind, ns, name, body)
        if method == "PATCH" and route.sub == "status":
            if request.content_type != "application/merge-patch+json":
                raise StatusError(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
            return self.store.patch_status(kind, ns, name, body)
        raise StatusError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

    def _out(self, route: Route, obj: Obj) -> Obj:
        group = route.kind.group
        obj["apiVersion"] = f"{group}/{route.version}" if group else route.version
        obj["kind"] = route.kind.kind
        return obj

    def _list(self, route: Route, q: Any) -> Obj:
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        items = [o for o in self.store.list(route.kind, route.namespace) if matches(o, q.get("labelSelector"))]
        list_rv, after = self.store.rv, ""
        if cont:
            token = msgspec.json.decode(base64.b64decode(cont))
            list_rv, after = token["rv"], token["after"]
            if list_rv < self.store.floor:
                msg = "The provided continue parameter is too old to display a consistent list result."
                raise expired(msg + " You can start a new list without the continue parameter.")
            items = [o for o in items if sort_key(o) > after]
        meta: Obj = {"resourceVersion": str(list_rv)}
        if limit and len(items) > limit:
            items = items[:limit]
            meta["continue"] = base64.b64encode(
                msgspec.json.encode({"rv": list_rv, "after": sort_key(items[-1])})
            ).decode()
        api_version = f"{route.kind.group}/{route.version}" if route.kind.group else route.version
        items = [self._out(route, o) for o in items]
        return {"kind": f"{route.kind.kind}List", "apiVersion": api_version, "metadata": meta, "items": items}

    async def _watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        q = request.query
        selector, rv = q.get("labelSelector"), q.get("resourceVersion") or "0"
        backlog: list[tuple[str, Obj]]
        if rv == "0":
            backlog = [("ADDED", o) for o in self.store.list(route.kind, route.namespace)]
        elif int(rv) < self.store.floor:
            raise expired(f"too old resource version: {rv} ({self.store.floor})")
        else:
            backlog = [(e.type, e.obj) for e in self.store.history if e.rv > int(rv) and self._mine(e, route)]
        watcher = Watcher(route.kind, route.namespace)
        self.store.listeners.add(watcher.queue)
        self.watchers.add(watcher)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await resp.prepare(request)
            self.watch_started.set()
            for type_, obj in backlog:
                if matches(obj, selector):
                    await send(resp, type_, self._out(route, obj))
            timeout = float(q.get("timeoutSeconds") or 1800)
            bookmarks = q.get("allowWatchBookmarks") == "true"
            if await self._stream(resp, route, watcher, selector, timeout, bookmarks):
                await resp.write_eof()
            elif request.transport is not None:
                request.transport.abort()
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.store.listeners.discard(watcher.queue)
            self.watchers.discard(watcher)
        return resp

    def _mine(self, event: Event, route: Route) -> bool:
        return event.kind is route.kind and (route.namespace is None or event.namespace == route.namespace)

    async def _stream(
        self, resp: web.StreamResponse, route: Route, w: Watcher, selector: str | None, seconds: float, marks: bool
    ) -> bool:
        """Send events until ``timeoutSeconds`` (True: end cleanly) or a cut (False: drop)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            wait = end - loop.time()
            if marks and self.bookmark_interval:
                wait = min(wait, self.bookmark_interval)
            if wait <= 0:
                return True
            try:
                item = await asyncio.wait_for(w.queue.get(), wait)
            except TimeoutError:
                item = "BOOKMARK" if marks and loop.time() < end else None
                if item is None:
                    continue
            if item == "CUT":
                return False
            if item == "STALL":
                await w.released.wait()
                return False
            if item == "EXPIRE":
                status = expired("The resourceVersion for the provided watch is too old.").status()
                await send(resp, "ERROR", status)
                return True
            if item == "BOOKMARK":
                if marks:
                    mark = {"metadata": {"resourceVersion": str(self.store.rv)}}
                    await send(resp, "BOOKMARK", self._out(route, mark))
                continue
            if isinstance(item, Event) and self._mine(item, route) and matches(item.obj, selector):
                await send(resp, item.type, self._out(route, dict(item.obj)))


def group_doc(group: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def sort_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def check_name(body: Any, name: str) -> None:
    if not isinstance(body, dict) or (body.get("metadata") or {}).get("name") != name:
        raise StatusError(400, "BadRequest", "the name of the object does not match the name on the URL")


async def send(resp: web.StreamResponse, type_: str, obj: Obj) -> None:
    await resp.write(msgspec.json.encode({"type": type_, "object": obj}) + b"\n")


def answer(body: Obj, code: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=code, content_type="application/json", headers=headers)
