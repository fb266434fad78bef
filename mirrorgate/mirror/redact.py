"""Masking secrets in a mismatch record (pure: no I/O, no state).

A record (``board.py`` rule 3) shows the request and both responses, bodies included. The values
of the request's redacted headers (``compare.ALWAYS_REDACTED`` and the policy's
``redactHeaders``) must never reach ``/mirrors/<id>/diffs``, even when a backend echoes them in
its body (an echo service answers the request's headers as JSON).

Rules:
1. The secrets are the values of every header whose name is redacted, as the client sent them
   (the request's) or as the backend sent them (the responses'), each whole; for ``Cookie``
   also each cookie's value, for ``Set-Cookie`` the value of its cookie, for
   ``Authorization``/``Proxy-Authorization`` also the credentials after the scheme (RFC 9110
   section 11.4). Empty values are no secrets.
2. ``Redactor.text`` replaces every literal occurrence of a secret with ``[redacted]`` (longest
   secrets first); ``body`` does the same on bytes (each secret as latin-1, UTF-8 and JSON-escaped
   bytes), masks a truncated body's tail that begins a secret, and in a JSON body (kept whole,
   at most ``compare.MAX_JSON_BYTES``) replaces the value of every member whose name is a
   redacted header name (any case) with ``"[redacted]"`` (re-encoded compactly).
3. ``value`` masks a difference's JSON value the same way: strings by ``text``, members named
   like a redacted header by ``[redacted]``, member names by ``text``.
4. Masking a secret also masks the same characters wherever else they appear: a short cookie
   value can blank unrelated text. That is the price of never showing one.
"""

from collections.abc import Iterable
from typing import Any

import msgspec

from mirrorgate.mirror.compare import MAX_JSON_BYTES, REDACTED

_MASK = REDACTED.encode()
_CREDENTIALS = frozenset(("authorization", "proxy-authorization"))
_COOKIES = frozenset(("cookie", "set-cookie"))


def secrets_of(headers: Iterable[tuple[str, str]], names: frozenset[str]) -> set[str]:
    """Rule 1, for one header list."""
    out: set[str] = set()
    for name, value in headers:
        key = name.lower()
        if key not in names:
            continue
        value = value.strip()
        if not value:
            continue
        out.add(value)
        if key in _CREDENTIALS:
            out.add(value.partition(" ")[2].strip())
        elif key in _COOKIES:
            pairs = value.split(";") if key == "cookie" else value.split(";", 1)[:1]
            for pair in pairs:
                _, eq, v = pair.partition("=")
                v = v.strip()
                if eq and v:
                    out.add(v)
                    out.add(v.strip('"'))  # a quoted cookie-value (RFC 6265 section 4.1.1)
    out.discard("")
    return out


class Redactor:
    """Masks the secrets of one record (rules 2 and 3)."""

    __slots__ = ("_forms", "_names", "_secrets")

    def __init__(self, names: frozenset[str], secrets: set[str]) -> None:
        self._names = names
        self._secrets = sorted(secrets, key=len, reverse=True)  # a secret inside another: the longer first
        forms: dict[bytes, None] = {}
        for s in self._secrets:
            forms.setdefault(s.encode("utf-8"), None)
            forms.setdefault(s.encode("latin-1", "replace"), None)
            forms.setdefault(msgspec.json.encode(s)[1:-1], None)
        self._forms = sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def body(self, body: bytes, truncated: bool, json: bool) -> bytes:
        """Rule 2: ``json``: the body's content type is JSON."""
        if json and not truncated and len(body) <= MAX_JSON_BYTES:
            body = self._json_members(body)
        for form in self._forms:
            if form in body:
                body = body.replace(form, _MASK)
        if truncated:  # the body may have been cut inside a secret: mask the longest tail that begins one
            cut = len(body)
            for form in self._forms:
                first = form[:1]
                i = body.find(first, max(0, len(body) - len(form) + 1))
                while 0 <= i < cut:
                    if form.startswith(body[i:]):
                        cut = i
                        break
                    i = body.find(first, i + 1)
            if cut < len(body):
                body = body[:cut] + _MASK
        return body

    def _json_members(self, body: bytes) -> bytes:
        lower = body.lower()
        if not any(b'"' + name.encode() + b'"' in lower for name in self._names):
            return body
        try:
            doc = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):
            return body
        masked, changed = self._members(doc)
        return msgspec.json.encode(masked) if changed else body

    def _members(self, value: Any) -> tuple[Any, bool]:
        """Members named like a redacted header -> ``[redacted]``, iteratively (any depth)."""
        if not isinstance(value, dict | list):
            return value, False
        changed = False
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key in node:
                    if isinstance(key, str) and key.lower() in self._names:
                        node[key] = REDACTED
                        changed = True
                    elif isinstance(node[key], dict | list):
                        stack.append(node[key])
            else:
                stack.extend(v for v in node if isinstance(v, dict | list))
        return value, changed

    def value(self, value: Any) -> Any:
        """Rule 3 (a copy: the difference's value is left as it was)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k): REDACTED if k.lower() in self._names else self.value(v) for k, v in value.items()}
        return value
