"""The access-log line of one exchange (logger ``mirrorgate.access``), text or JSON.

Rules: one line per exchange, written by ``Exchange.finish`` only when the logger is enabled at
INFO; fields that do not apply are ``-`` in text (``""`` in JSON); bytes are latin-1 decoded.
``bytes`` is the number of response body bytes written to the client, the head not counted and
chunk framing counted (NGINX's ``$body_bytes_sent``): a relayed body, the body of a local reply
(its text, e.g. 20 for a 503), 0 for a redirect and for any answer to HEAD.
``AccessLogged`` is a mixin of ``Exchange``: it keeps no state of its own.
"""

import json
import logging
import time

from mirrorgate.dataplane.state import ClientConnection, GatewayState, access_log


class AccessLogged:
    """The access log of ``Exchange`` (whose ``__init__`` sets these attributes)."""

    __slots__ = ()

    proto: ClientConnection
    state: GatewayState
    started: float  # ``time.monotonic()`` when the head was parsed
    method: bytes
    target: bytes
    version: str
    status: int
    bytes_sent: int
    route: str
    key: tuple[str, int]
    request_id: bytes

    def _endpoint(self) -> str:
        address, port = self.key
        return f"{address}:{port}" if address else ""

    def _log(self) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        ms = (time.monotonic() - self.started) * 1000
        if self.state.access_log_json:
            access_log.info(
                "%s",
                json.dumps(
                    {
                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "client": self.proto.client,
                        "method": self.method.decode("latin-1"),
                        "target": self.target.decode("latin-1"),
                        "status": self.status,
                        "bytes": self.bytes_sent,
                        "duration_ms": round(ms, 3),
                        "route": self.route,
                        "endpoint": self._endpoint(),
                        "request_id": self.request_id.decode("latin-1"),
                    }
                ),
            )
        else:
            access_log.info(
                '%s "%s %s HTTP/%s" %d %d %.3fms route=%s endpoint=%s request_id=%s',
                self.proto.client,
                self.method.decode("latin-1"),
                self.target.decode("latin-1"),
                self.version,
                self.status,
                self.bytes_sent,
                ms,
                self.route or "-",
                self._endpoint() or "-",
                self.request_id.decode("latin-1") or "-",
            )
