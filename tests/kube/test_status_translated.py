"""The status writer fed with the translator's real output (``translate`` then ``list_view``).

The same manifests are loaded from a file (as ``mirrorgate status -f`` would) and stored in the
fake API server, so what the writer receives is exactly what the Kubernetes source will hand it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mirrorgate.kube.client import KubeClient
from mirrorgate.providers.files import load_paths
from mirrorgate.status_view import list_view
from mirrorgate.translate.translator import translate
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_status import PLURAL, apply, make_sync, running, status_of, status_puts, store_live

MANIFESTS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mirrorgate, generation: 1}
spec: {controllerName: mirrorgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: envoy, generation: 1}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default, generation: 1}
spec:
  gatewayClassName: mirrorgate
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: admin, port: 8081, protocol: HTTP, hostname: admin.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default, generation: 1}
spec:
  gatewayClassName: envoy
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default, generation: 1}
spec:
  parentRefs: [{name: gw, sectionName: http}, {name: eg}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
"""


def translated(path: Path) -> dict[str, Any]:
    path.write_text(MANIFESTS)
    result = load_paths([str(path)])
    assert not result.errors, result.errors
    return list_view(result.snapshot, translate(result.snapshot).statuses)


async def test_translator_output_is_written_once_and_then_settles(
    api: FakeApiServer, client: KubeClient, tmp_path: Path
) -> None:
    for doc in yaml.safe_load_all(MANIFESTS):
        api.put(PLURAL[doc["kind"]], doc)
    status_list = translated(tmp_path / "m.yaml")
    async with running(make_sync(client, store_live(api))) as sync:
        sync.set_leading(True)
        await apply(sync, status_list)
        assert sorted(p.rsplit("/", 2)[-2] for p in status_puts(api)) == ["gw", "mirrorgate", "r"]
        gw = status_of(api, "Gateway", "gw", "default")
        listeners = {li["name"]: li for li in gw["listeners"]}
        assert listeners["admin"]["attachedRoutes"] == 0  # required by the CRD even when zero
        assert listeners["http"]["attachedRoutes"] == 1
        parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
        assert [p["parentRef"]["name"] for p in parents] == ["gw"]
        assert status_of(api, "Gateway", "eg", "default") == {}
        assert status_of(api, "GatewayClass", "envoy") == {}

        writes = len(status_puts(api))
        await apply(sync, translated(tmp_path / "again.yaml"))
        assert len(status_puts(api)) == writes
