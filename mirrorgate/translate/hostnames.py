"""Hostname matching and listener/route hostname intersection: a ``*.`` wildcard matches one or
more DNS labels, and a route attaches to a listener only where ``Listener.hostname`` and
``HTTPRoute.spec.hostnames`` intersect (Gateway API ``HTTPRouteSpec.hostnames``)."""


def matches(pattern: str, host: str) -> bool:
    """Does a hostname ``pattern`` ("" any, ``*.suffix`` or exact) match the concrete ``host``?

    "Wildcards are a suffix match that needs at least one extra label."
    """
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(listener: str | None, route: tuple[str, ...]) -> tuple[str, ...]:
    """The hostnames a route serves on a listener; ``()`` means none intersect.

    Listener without hostname: the route's hostnames (or ``""`` = any). Route without hostnames:
    the listener's. Both: each route hostname that the listener covers, or the listener hostname
    where the route's wildcard covers it.
    """
    if not listener:
        return route or ("",)
    if not route:
        return (listener,)
    out: list[str] = []
    for h in route:
        if _covers(listener, h):
            out.append(h)
        elif _covers(h, listener):
            out.append(listener)
    return tuple(dict.fromkeys(out))


def _covers(pattern: str, other: str) -> bool:
    """Does ``pattern`` match everything ``other`` (a pattern too) matches?"""
    if pattern == other:
        return True
    if other.startswith("*."):
        return pattern.startswith("*.") and other[1:].endswith(pattern[1:])
    return matches(pattern, other)


def specificity(hostname: str) -> tuple[int, int]:
    """Sort key, most specific first: exact names, then wildcards, longest first, then ""."""
    if not hostname:
        return (2, 0)
    if hostname.startswith("*."):
        return (1, -len(hostname))
    return (0, -len(hostname))
