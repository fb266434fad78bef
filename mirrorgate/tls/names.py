"""Host name matching: certificate SANs (RFC 6125) and Gateway API listener hostnames; names are lower-case."""


def san_matches(pattern: str, name: str) -> bool:
    """RFC 6125 section 6.4.3, as browsers do it: ``*`` only as the whole left-most label, covering one label."""
    if not pattern.startswith("*."):
        return pattern == name
    head, dot, rest = name.partition(".")
    return bool(head) and bool(dot) and rest == pattern[2:]


def listener_matches(hostname: str, name: str) -> bool:
    """Gateway API listener ``hostname``: ``*.example.com`` matches any name ending in ``.example.com``
    (one label or more before it), never ``example.com`` itself."""
    if hostname.startswith("*."):
        return name.endswith(hostname[1:]) and len(name) > len(hostname) - 1
    return hostname == name
