"""Compiled request matching: ``compile(table) -> Matcher``; ``Matcher.select(...) -> Decision``.

Owns: turning a ``RoutingTable`` into lookup structures once, and choosing, per request, the
route, the weighted backend and the endpoint. Pure: no sockets, no clocks; the RNG is injected.

Rules (the IR docstring's steps 1-4, exactly):
1. The server key ``(address, port)`` of the socket selects a server; unknown key -> 404.
2. The Host header is lower-cased and its port dropped (``[v6]:port`` keeps the brackets). The
   most specific listener of that server wins: exact hostname, then the longest wildcard
   (``*.a.b`` needs at least one extra label), then the empty hostname. Routes of other
   listeners never serve the request (listener isolation).
3. Within that listener, the most specific virtual host, same order.
4. The first route of that virtual host whose match matches (the translator already sorted them
   in Gateway API precedence order). Nothing matches -> the listener's ``default_action``, else
   404. Large virtual hosts are indexed by path (``RuleSet``) so that 10k routes cost about what
   10 do; the order of evaluation is unchanged.

Match semantics:
- Paths are compared on the raw request-target bytes before ``?``, **without percent-decoding**
  (``/%76%32`` does not match ``/v2``); the target is forwarded byte-exact regardless. Decoding
  would let two spellings of one path route differently from what the backend sees, and the
  Gateway API path rules (no ``%2f``, no dot segments in config) assume the raw form.
- Exact: byte equality, case-sensitive. PathPrefix: element-wise (the IR stores the prefix
  without a trailing ``/``; ``""`` matches everything). RegularExpression: Python ``re``
  ``fullmatch`` on the path (Envoy's full-match semantics).
- Headers: names case-insensitive (the protocol lower-cases request names once; the IR's are
  lower-case); repeated request headers are joined with ``,`` (RFC 9110 §5.3) before comparing.
  Exact is case-sensitive equality; RegularExpression is ``re.search`` (IR docstring).
- Query params: the query is split on ``&`` and each name and value percent-decoded (``+`` is not
  a space), as Envoy does; names case-sensitive; the first occurrence of a name counts. Exact is
  equality, RegularExpression ``re.search``.
- Method: byte equality.

Mirrors: each Plan and Target compiles the MirrorPolicy settings of its mirrors once
(``mirror_shapes``: ``mirror.policy.Shape``, the header edits compiled here; None when no mirror
has any) and whether one compares responses (``compare``); a Plan folds both into the one flag
its exchange branches on (``mirror_policy``), so plain mirrors cost what they did.

Backend and endpoint choice:
- ``Plan.pick(rng)``: weighted choice among backends with weight > 0 (a weight-0 backend is
  never chosen); one positive backend takes no draw at all.
- Endpoints: round-robin per backend (one counter shared by every rule naming the same backend
  with the same endpoints). It is O(1), needs no shared state with the pool, and spreads load
  evenly over the identical replicas a Service is made of; a least-request policy would need
  in-flight counts from the pool and is left for later.
"""

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from random import Random
from typing import Generic, TypeVar
from urllib.parse import unquote_to_bytes

from mirrorgate.dataplane.headers import HeaderEdit, compile_edit
from mirrorgate.gcpause import paused_gc
from mirrorgate.ir.table import (
    Action,
    Backend,
    BackendTLS,
    ExternalName,
    HTTPListener,
    Match,
    Mirror,
    PathType,
    RoutingTable,
    UpstreamAddress,
)
from mirrorgate.mirror.policy import Shape, editable, has_policy
from mirrorgate.upstream.tls import Key, keys_for, trust_of

T = TypeVar("T")
ServerKey = tuple[str, int]
Headers = Sequence[tuple[bytes, bytes]]
BalancerKey = tuple[str, tuple[UpstreamAddress, ...], BackendTLS | None, ExternalName | None]

_EXACT, _PREFIX, _REGEX, _ANY = 0, 1, 2, 3


class HostIndex(Generic[T]):
    """Hostname -> item: exact dict, wildcard suffix dict (walked label by label, longest suffix
    first, which equals scanning wildcards longest-first), then the ``""`` catch-all."""

    __slots__ = ("any", "exact", "wild")

    def __init__(self, items: Iterable[tuple[str, T]]) -> None:
        self.exact: dict[bytes, T] = {}
        self.wild: dict[bytes, T] = {}
        self.any: T | None = None
        for hostname, item in items:
            name = hostname.lower().encode()
            if not name:
                if self.any is None:
                    self.any = item
            elif name.startswith(b"*."):
                self.wild.setdefault(name[1:], item)
            else:
                self.exact.setdefault(name, item)

    def lookup(self, host: bytes) -> T | None:
        item = self.exact.get(host)
        if item is not None:
            return item
        if self.wild:
            i = host.find(b".")
            while i > 0:
                item = self.wild.get(host[i:])
                if item is not None:
                    return item
                i = host.find(b".", i + 1)
        return self.any


def normalize_host(host: bytes) -> bytes:
    """Lower-case, port dropped: ``Foo.com:80`` -> ``foo.com``; ``[::1]:80`` -> ``[::1]``."""
    if host.startswith(b"["):
        end = host.find(b"]")
        return (host[: end + 1] if end > 0 else host).lower()
    return host.partition(b":")[0].lower()


class RoundRobin:
    """Endpoint balancer of one backend."""

    __slots__ = ("endpoints", "keys", "next")

    def __init__(self, endpoints: tuple[UpstreamAddress, ...], keys: tuple[Key, ...] | None = None) -> None:
        self.endpoints = endpoints
        # the pool's keys, made once: (address, port), or with TLS / ExternalName (upstream.tls)
        self.keys = keys if keys is not None else tuple((e.address, e.port) for e in endpoints)
        self.next = 0

    def choose(self) -> UpstreamAddress | None:
        eps = self.endpoints
        if not eps:
            return None
        i = self.next
        self.next = (i + 1) % len(eps)
        return eps[i]

    def choose_key(self) -> Key | None:
        """``choose`` as the pool's key ``(address, port)``."""
        keys = self.keys
        n = len(keys)
        if n == 1:
            return keys[0]
        if not n:
            return None
        i = self.next
        self.next = (i + 1) % n
        return keys[i]


def mirror_shapes(mirrors: tuple[Mirror, ...]) -> tuple[Shape | None, ...] | None:
    """The MirrorPolicy settings of each mirror, compiled once (``mirror.policy.Shape``; None for a
    mirror without any); None when no mirror has any (the mirrors are then served as before)."""
    if not any(has_policy(m) for m in mirrors):
        return None
    shapes: list[Shape | None] = []
    for m in mirrors:
        if not has_policy(m):
            shapes.append(None)
            continue
        edit = compile_edit(editable(m.request_headers), lower_names=True)
        shapes.append(Shape(m, edit.apply if edit is not None else None))
    return tuple(shapes)


class Target:
    """One compiled backend of one plan: the IR backend, its balancer, its backendRef-level header
    edits, ``response_edits``: the response edits to apply in order (the rule's, then the
    backendRef's), empty when there are none, ``mirror_shapes`` of its mirrors and ``compare``."""

    __slots__ = (
        "backend",
        "balancer",
        "compare",
        "mirror_shapes",
        "name",
        "request_edit",
        "response_edit",
        "response_edits",
        "status",
    )

    def __init__(self, backend: Backend, balancer: RoundRobin, rule_response_edit: HeaderEdit | None = None) -> None:
        self.backend = backend
        self.name = backend.name
        self.status = backend.status  # non-zero: answer locally with it (an invalid backendRef)
        self.balancer = balancer
        self.request_edit: HeaderEdit | None = compile_edit(backend.filters.request_headers, lower_names=True)
        self.response_edit: HeaderEdit | None = compile_edit(backend.filters.response_headers, lower_names=False)
        self.response_edits: tuple[HeaderEdit, ...] = tuple(
            e for e in (rule_response_edit, self.response_edit) if e is not None
        )
        self.mirror_shapes = mirror_shapes(backend.filters.mirrors)
        self.compare = any(m.compare is not None for m in backend.filters.mirrors)  # some mirror compares

    @property
    def plain(self) -> bool:
        """Nothing to do to the request at this backendRef: no header edit, rewrite, redirect or mirror."""
        f = self.backend.filters
        return self.request_edit is None and f.url_rewrite is None and f.redirect is None and not f.mirrors


class Plan:
    """A compiled ``Action``: weighted targets, rule-level header edits and the timeout precomputed.

    ``plain``: the request is forwarded as received (hop-by-hop and ``X-Forwarded-*`` aside): no
    request header edit or URL rewrite on the rule, nor header edit, rewrite, redirect or mirror
    on any backendRef. The exchange then encodes the upstream head in one pass
    (``encode_forward``), and the rule's mirrors (``mirrors``) get that same head.
    ``mirror_shapes``: the MirrorPolicy settings of ``mirrors`` (``mirror_shapes``), None when
    none has any; ``compare``: some of the rule's mirrors compare responses; ``mirror_policy``:
    either of the two, the one flag the exchange branches on per mirrored request (False: the
    plain mirror path, as without MirrorPolicy).
    """

    __slots__ = (
        "action",
        "compare",
        "cumulative",
        "mirror_policy",
        "mirror_shapes",
        "mirrors",
        "plain",
        "redirect",
        "request_edit",
        "response_edit",
        "single",
        "targets",
        "timeout",
        "total",
    )

    def __init__(
        self, action: Action, balancers: dict[BalancerKey, RoundRobin], trust: Mapping[str, str] | None = None
    ) -> None:
        self.action = action
        self.request_edit: HeaderEdit | None = compile_edit(action.filters.request_headers, lower_names=True)
        self.response_edit: HeaderEdit | None = compile_edit(action.filters.response_headers, lower_names=False)
        # request and backendRequest both start when forwarding starts (the request head is in);
        # None/0 disable each (Gateway API ``HTTPRouteTimeouts``: 0s means no timeout), so the
        # tighter of the set ones applies.
        limits = [ms for ms in (action.request_timeout_ms, action.backend_request_timeout_ms) if ms]
        self.timeout: float | None = min(limits) / 1000 if limits else None
        targets: list[Target] = []
        cumulative: list[int] = []
        total = 0
        for b in action.backends:
            if b.weight <= 0:
                continue
            key = (b.name, b.endpoints, b.tls, b.external)
            rr = balancers.get(key)
            if rr is None:
                rr = balancers[key] = RoundRobin(b.endpoints, keys_for(b.endpoints, b.tls, b.external, trust or {}))
            total += b.weight
            targets.append(Target(b, rr, self.response_edit))
            cumulative.append(total)
        self.targets = tuple(targets)
        self.cumulative = tuple(cumulative)
        self.total = total
        f = action.filters
        self.redirect = f.redirect  # rule-level RequestRedirect
        self.single = self.targets[0] if len(self.targets) == 1 else None  # the pick when there is no choice
        self.mirrors = f.mirrors  # rule-level RequestMirror filters
        self.mirror_shapes = mirror_shapes(f.mirrors)
        self.compare = any(m.compare is not None for m in f.mirrors)
        self.mirror_policy = self.mirror_shapes is not None or self.compare
        self.plain = self.request_edit is None and f.url_rewrite is None and all(t.plain for t in self.targets)

    def pick(self, rng: Random) -> Target | None:
        """Weighted choice; None when no backend has weight > 0."""
        targets = self.targets
        if len(targets) <= 1:
            return targets[0] if targets else None
        return targets[bisect_right(self.cumulative, rng.random() * self.total)]


class Decision:
    """What to do with a request; precomputed at compile time and shared (treat as immutable).

    ``status`` non-zero: answer locally with it (404 no match, or the action's local status).
    Otherwise ``plan`` redirects (``plan.action.filters.redirect``) or forwards.
    """

    __slots__ = ("listener", "plan", "route", "status")

    def __init__(self, route: str, listener: HTTPListener | None, plan: Plan | None, status: int) -> None:
        self.route = route
        self.listener = listener
        self.plan = plan
        self.status = status

    def __repr__(self) -> str:
        return f"Decision(route={self.route!r}, status={self.status})"


NOT_FOUND = Decision("", None, None, 404)


class _Rule:
    """One compiled IR ``Route`` (a rule's match)."""

    __slots__ = ("decision", "headers", "kind", "method", "path", "path_slash", "query", "regex")

    def __init__(self, match: Match, decision: Decision) -> None:
        self.decision = decision
        path = match.path.encode()
        self.path = path
        self.path_slash = path + b"/"
        self.regex: re.Pattern[str] | None = None
        if match.path_type == PathType.EXACT:
            self.kind = _EXACT
        elif match.path_type == PathType.REGEX:
            self.kind = _REGEX
            self.regex = re.compile(match.path)
        else:
            self.kind = _ANY if not path else _PREFIX
        self.method = match.method.encode() if match.method else None
        self.headers = tuple((h.name.lower().encode(), *_value_matcher(h.type, h.value)) for h in match.headers)
        self.query = tuple((q.name.encode(), *_value_matcher(q.type, q.value)) for q in match.query_params)

    def path_matches(self, path: bytes) -> bool:
        kind = self.kind
        if kind == _ANY:
            return True
        if kind == _PREFIX:
            return path == self.path or path.startswith(self.path_slash)
        if kind == _EXACT:
            return path == self.path
        assert self.regex is not None
        return self.regex.fullmatch(path.decode("utf-8", "surrogateescape")) is not None


def _value_matcher(kind: str, value: str) -> tuple[bytes | None, re.Pattern[str] | None]:
    if kind == "RegularExpression":
        return None, re.compile(value)
    return value.encode(), None


def _value_ok(got: bytes | None, exact: bytes | None, regex: re.Pattern[str] | None) -> bool:
    if got is None:
        return False
    if regex is None:
        return got == exact
    return regex.search(got.decode("utf-8", "surrogateescape")) is not None


def header_value(headers: Headers, name: bytes) -> bytes | None:
    """All values of ``name`` (lower-case) joined with ``,``; None when absent."""
    values = [v for n, v in headers if n == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b",".join(values)


def parse_query(query: bytes) -> dict[bytes, bytes]:
    """Percent-decoded name -> first value (a bare ``name`` has value ``b""``)."""
    out: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        name = unquote_to_bytes(name)
        if name not in out:
            out[name] = unquote_to_bytes(value)
    return out


class RuleSet:
    """The ordered rules of one virtual host, with a path index when there are many.

    Small sets are scanned in order. Above ``INDEX_THRESHOLD`` rules, Exact and PathPrefix rules
    are indexed by path (a prefix rule can only match a path at one of the path's ``/``
    boundaries, or the whole path), so a request looks up ``segments + 1`` keys, merges the
    candidate positions with the regex rules' and checks only those, still in precedence order.
    The cost then grows with the path's depth and the candidates, not with the table's size.
    """

    __slots__ = ("exact", "first", "index", "other", "prefix", "rules")

    INDEX_THRESHOLD = 8

    def __init__(self, rules: tuple[_Rule, ...], index_threshold: int = INDEX_THRESHOLD) -> None:
        self.rules = rules
        # the decision of the first rule when it matches every request (path ``/`` prefix, no
        # method, header or query condition): then nothing else needs to be looked at
        head = rules[0] if rules else None
        self.first = (
            head.decision
            if head is not None and head.kind == _ANY and head.method is None and not head.headers and not head.query
            else None
        )
        self.index = len(rules) > index_threshold
        self.exact: dict[bytes, list[int]] = {}
        self.prefix: dict[bytes, list[int]] = {}
        self.other: list[int] = []
        if self.index:
            for i, rule in enumerate(rules):
                if rule.kind == _EXACT:
                    self.exact.setdefault(rule.path, []).append(i)
                elif rule.kind in (_PREFIX, _ANY):
                    self.prefix.setdefault(rule.path, []).append(i)
                else:
                    self.other.append(i)

    def candidates(self, path: bytes) -> Iterable[_Rule]:
        """The rules that may match ``path``, in precedence order."""
        if not self.index:
            return self.rules
        found: list[int] = list(self.other)
        found += self.exact.get(path, ())
        prefix = self.prefix
        found += prefix.get(b"", ())
        i = path.find(b"/", 1)
        while i > 0:
            found += prefix.get(path[:i], ())
            i = path.find(b"/", i + 1)
        found += prefix.get(path, ())
        found.sort()
        rules = self.rules
        return [rules[i] for i in found]


class _ListenerMatcher:
    __slots__ = ("fallback", "listener", "vhosts")

    def __init__(self, listener: HTTPListener, fallback: Decision, vhosts: HostIndex[RuleSet]) -> None:
        self.listener = listener
        self.fallback = fallback
        self.vhosts = vhosts


class Matcher:
    """The compiled table. Immutable after ``compile``; a reload builds a new one.

    ``hosts`` memoises steps 1-3 per (server, raw Host value): clients send the same few Host
    values over and over. It holds at most ``HOST_CACHE`` entries (then starts afresh), so random
    Host headers cost a lookup each, as without it, and cannot grow it without bound.
    """

    __slots__ = ("hosts", "servers", "table")

    HOST_CACHE = 1024

    def __init__(self, table: RoutingTable, servers: dict[ServerKey, HostIndex[_ListenerMatcher]]) -> None:
        self.table = table
        self.servers = servers
        self.hosts: dict[tuple[ServerKey, bytes], tuple[_ListenerMatcher, RuleSet | None] | None] = {}

    def _lookup(self, server: ServerKey, host: bytes) -> tuple[_ListenerMatcher, RuleSet | None] | None:
        """Steps 1-3: the listener and the virtual host's rules; None -> 404."""
        listeners = self.servers.get(server)
        if listeners is None:
            return None
        hostname = normalize_host(host)
        lm = listeners.lookup(hostname)
        if lm is None:
            return None
        return lm, lm.vhosts.lookup(hostname)

    def select(self, server: ServerKey, host: bytes, method: bytes, target: bytes, headers: Headers) -> Decision:
        """The decision for one request; ``headers`` have lower-case names."""
        key = (server, host)
        hosts = self.hosts
        try:
            found = hosts[key]
        except KeyError:
            found = self._lookup(server, host)
            if len(hosts) >= self.HOST_CACHE:
                hosts.clear()
            hosts[key] = found
        if found is None:
            return NOT_FOUND
        lm, ruleset = found
        if ruleset is not None:
            if ruleset.first is not None:
                return ruleset.first
            path, _, query = target.partition(b"?")
            params: dict[bytes, bytes] | None = None
            for rule in ruleset.candidates(path) if ruleset.index else ruleset.rules:
                if rule.method is not None and rule.method != method:
                    continue
                if rule.kind != _ANY and not rule.path_matches(path):
                    continue
                if rule.headers and not all(_value_ok(header_value(headers, n), e, r) for n, e, r in rule.headers):
                    continue
                if rule.query:
                    if params is None:
                        params = parse_query(query)
                    if not all(_value_ok(params.get(n), e, r) for n, e, r in rule.query):
                        continue
                return rule.decision
        return lm.fallback


def compile(table: RoutingTable) -> Matcher:
    """Compile a routing table: every regex, host dict and plan is built here, once."""
    with paused_gc():  # many objects, no cycles (mirrorgate.gcpause)
        return _compile(table)


def _compile(table: RoutingTable) -> Matcher:
    balancers: dict[BalancerKey, RoundRobin] = {}
    plans: dict[int, Plan] = {}
    trust = trust_of(table)

    def plan_of(action: Action) -> Plan:
        plan = plans.get(id(action))
        if plan is None:
            plan = plans[id(action)] = Plan(action, balancers, trust)
        return plan

    servers: dict[ServerKey, HostIndex[_ListenerMatcher]] = {}
    for server in table.servers:
        compiled = []
        for listener in server.listeners:
            default = listener.default_action
            fallback = (
                Decision(default.rule, listener, plan_of(default), default.status)
                if default is not None
                else Decision("", listener, None, 404)
            )
            vhosts = HostIndex(
                (
                    vh.hostname,
                    RuleSet(
                        tuple(
                            _Rule(r.match, Decision(r.name, listener, plan_of(r.action), r.action.status))
                            for r in vh.routes
                        )
                    ),
                )
                for vh in listener.virtual_hosts
            )
            compiled.append((listener.hostname, _ListenerMatcher(listener, fallback, vhosts)))
        servers.setdefault((server.address, server.port), HostIndex(compiled))
    return Matcher(table, servers)
