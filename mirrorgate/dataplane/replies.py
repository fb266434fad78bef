"""Status lines and local replies, precomputed at import time (nothing is formatted per request).

Owns: ``status_line(code)`` for proxied responses and ``local_reply(code, keep_alive)`` for
the answers the gateway gives itself (400, 404, 413, 431, 500, 502, 503, 504, ...).

Rules:
1. A local reply is complete bytes: status line, ``content-type: text/plain``, a body naming the
   reason, ``content-length`` and, when the connection will close, ``connection: close``.
2. Nothing here formats at request time except for codes outside the tables (rare).
"""

from http import HTTPStatus

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason.encode()) for code, reason in _REASONS.items()}
STATUS_LINES = _LINES  # ``status_line`` without the call, for the relay's hot path

LOCAL_CODES = (400, 404, 405, 408, 413, 414, 421, 431, 500, 501, 502, 503, 504, 505)


def status_line(code: int) -> bytes:
    """``HTTP/1.1 <code> <reason>\\r\\n``; unknown codes get an empty reason (RFC 9112 allows it)."""
    line = _LINES.get(code)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % code


def _build(code: int, keep_alive: bool, extra: bytes = b"") -> bytes:
    body = (_REASONS.get(code, "Error") + "\n").encode()
    conn = b"" if keep_alive else b"connection: close\r\n"
    return b"".join(
        (
            status_line(code),
            b"content-type: text/plain\r\ncontent-length: %d\r\n" % len(body),
            conn,
            extra,
            b"\r\n",
            body,
        )
    )


_KEEP = {code: _build(code, True) for code in LOCAL_CODES}
_CLOSE = {code: _build(code, False) for code in LOCAL_CODES}

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def local_reply(code: int, keep_alive: bool) -> bytes:
    """The complete reply bytes for a local status."""
    table = _KEEP if keep_alive else _CLOSE
    reply = table.get(code)
    return reply if reply is not None else _build(code, keep_alive)


def redirect_reply(code: int, location: bytes, keep_alive: bool) -> bytes:
    """A RequestRedirect answer: ``location`` and an empty body."""
    conn = b"" if keep_alive else b"connection: close\r\n"
    return b"".join((status_line(code), b"location: ", location, b"\r\ncontent-length: 0\r\n", conn, b"\r\n"))


def strip_body(reply: bytes) -> bytes:
    """The head of a local reply (for HEAD requests): everything up to and including the blank line."""
    end = reply.find(b"\r\n\r\n")
    return reply[: end + 4] if end >= 0 else reply
