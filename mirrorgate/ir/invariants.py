"""Facts every routing table upholds, whatever the input. A violation is a bug in translate(),
never a user error: tests assert ``check(table) == []``; ``serve.apply`` checks every
table before it is served and keeps the old one when this finds a problem."""

from mirrorgate.ir.table import PPM, Action, RoutingTable


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
            actions = [r.action for vh in ln.virtual_hosts for r in vh.routes]
            if ln.default_action is not None:
                actions.append(ln.default_action)
            problems.extend(_action_problems(a) for a in actions if _action_problems(a))
    return problems


def _action_problems(action: Action) -> str:
    mirrors = [*action.filters.mirrors, *(m for b in action.backends for m in b.filters.mirrors)]
    if any(not 0 <= m.ppm <= PPM for m in mirrors):
        return f"{action.rule}: mirror rate outside 0..{PPM}"
    if any(b.weight < 0 for b in action.backends):
        return f"{action.rule}: negative weight"
    if not action.status and action.filters.redirect is None and not any(b.weight > 0 for b in action.backends):
        return f"{action.rule}: forwards but no backend can take traffic"
    return ""
