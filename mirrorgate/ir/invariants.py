"""Facts every routing table upholds, whatever the input. A violation is a bug in translate(),
never a user error: tests assert ``check(table) == []``; ``serve.apply`` checks every
table before it is served and keeps the old one when this finds a problem."""

from mirrorgate.ir.table import PPM, Action, Mirror, RoutingTable

# MirrorPolicy's enums as the IR carries them (the model's own tuples are out of reach: the IR
# depends on no input package, tests/test_layers.py)
SAMPLE_SOURCES = ("Header", "Cookie", "QueryParam")
SAMPLE_MISSING = ("Random", "Skip")
HOST_TYPES = ("Original", "ShadowSuffix", "Literal")


def check(table: RoutingTable) -> list[str]:
    """Every violated invariant, as one line each (empty when the table is sound)."""
    problems: list[str] = []
    sockets = [(s.address, s.port) for s in table.servers]
    if len(sockets) != len(set(sockets)):
        problems.append("two servers share one (address, port)")
    for server in table.servers:
        names = [ln.name for ln in server.listeners]
        if len(names) != len(set(names)):
            problems.append(f"{server.address}:{server.port}: duplicate listener names")
        for ln in server.listeners:
            if ln.port != server.port:
                problems.append(f"{ln.name}: port {ln.port} differs from its server's {server.port}")
            problems.extend(p for p in map(_action_problems, ln.actions()) if p)
    return problems


def _action_problems(action: Action) -> str:
    mirrors = [*action.filters.mirrors, *(m for b in action.backends for m in b.filters.mirrors)]
    if any(not 0 <= m.ppm <= PPM for m in mirrors):
        return f"{action.rule}: mirror rate outside 0..{PPM}"
    for m in mirrors:
        problem = _policy_problem(m)
        if problem:
            return f"{m.name}: {problem}"
    if any(b.weight < 0 for b in action.backends):
        return f"{action.rule}: negative weight"
    if not action.status and action.filters.redirect is None and not any(b.weight > 0 for b in action.backends):
        return f"{action.rule}: forwards but no backend can take traffic"
    return ""


def _policy_problem(m: Mirror) -> str:
    """What is wrong with a mirror's MirrorPolicy settings (the data plane compiles them as they
    are), "" when nothing is."""
    sample = m.sample_by
    if sample is not None:
        if sample.source not in SAMPLE_SOURCES:
            return f"sampleBy source {sample.source!r} is not one of {', '.join(SAMPLE_SOURCES)}"
        if sample.missing not in SAMPLE_MISSING:
            return f"sampleBy missing {sample.missing!r} is not one of {', '.join(SAMPLE_MISSING)}"
        if not sample.name:
            return "sampleBy has no name"
    host = m.host
    if host is not None:
        if host.type not in HOST_TYPES:
            return f"host type {host.type!r} is not one of {', '.join(HOST_TYPES)}"
        if (host.type == "Literal") != bool(host.value):
            return "host value must be given exactly when its type is Literal"
        if any(not "!" <= c <= "~" for c in host.value):  # it becomes a Host line as it is
            return f"host value {host.value!r} is not a hostname[:port]"
    if m.timeout_ms is not None and m.timeout_ms <= 0:
        return f"timeout {m.timeout_ms} ms is not positive"
    if m.max_body_lag is not None and m.max_body_lag <= 0:
        return f"maxBodyLag {m.max_body_lag} is not positive"
    return ""
