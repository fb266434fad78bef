"""Gateway API ``ListenerStatus`` requires ``name``, ``supportedKinds``, ``attachedRoutes`` and
``conditions``: they appear even when empty or zero, in the translator's status and in the
``mirrorgate status`` view."""

from typing import Any

import msgspec

from mirrorgate.providers.files import load_paths
from mirrorgate.status_view import list_view
from mirrorgate.translate import translate
from tests.support.manifests import gateway_doc

# one listener without routes, one whose only route kind is refused (no supported kinds)
LISTENERS = (
    "{name: idle, port: 80, protocol: HTTP},"
    " {name: tcp-only, port: 81, protocol: HTTP, allowedRoutes: {kinds: [{kind: TCPRoute}]}}"
)
REQUIRED = {"name", "supportedKinds", "attachedRoutes", "conditions"}


def _listeners(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {li["name"]: li for li in status["listeners"]}


def test_listener_status_keeps_zero_and_empty_required_fields() -> None:
    translated = translate(load_paths(["-"], stdin_text=gateway_doc(listeners=LISTENERS)).snapshot)
    listeners = _listeners(msgspec.to_builtins(translated.statuses["Gateway infra/gw"]))
    assert all(REQUIRED <= set(li) for li in listeners.values()), listeners
    assert listeners["idle"]["attachedRoutes"] == 0
    assert list(listeners["tcp-only"]["supportedKinds"]) == []


def test_status_view_keeps_zero_and_empty_required_fields() -> None:
    snap = load_paths(["-"], stdin_text=gateway_doc(listeners=LISTENERS)).snapshot
    view = list_view(snap, translate(snap).statuses)
    [gw] = [item for item in view["items"] if item["kind"] == "Gateway"]
    listeners = _listeners(gw["status"])
    assert listeners["idle"]["attachedRoutes"] == 0
    assert list(listeners["tcp-only"]["supportedKinds"]) == []
    assert all(REQUIRED <= set(li) for li in listeners.values()), listeners
