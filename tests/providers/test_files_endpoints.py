"""Endpoints named on the command line (SERVICE[.NS][:PORT]=ADDR:PORT) -> EndpointSlices."""

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorgate.ir.table import Action, Backend, RoutingTable, UpstreamAddress
from mirrorgate.model.core import EndpointSlice
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.providers.admission import admit
from mirrorgate.providers.endpoints import (
    EndpointsError,
    EndpointSpec,
    endpoint_slices,
    parse_endpoint,
    with_endpoints,
)
from mirrorgate.providers.files import load_paths
from mirrorgate.translate import translate
from mirrorgate.translate.backends import service_endpoints

EXAMPLES = sorted((Path(__file__).parent.parent.parent / "examples").glob("*.yaml"))

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: team}
spec:
  ports:
  - {name: http, port: 80, targetPort: http-web}
  - {name: admin, port: 9901, targetPort: 9901, appProtocol: http}
---
apiVersion: v1
kind: Service
metadata: {name: single}
spec:
  ports: [{port: 8080, targetPort: 3000}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com}
"""


@pytest.fixture
def snap(tmp_path: Path) -> Snapshot:
    path = tmp_path / "svc.yaml"
    path.write_text(SERVICES)
    result = load_paths([str(path)])
    assert result.errors == ()
    return result.snapshot


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("web=127.0.0.1:9000", EndpointSpec(service="web", address="127.0.0.1", target_port=9000)),
        (
            "web.team:80=10.0.0.7:8080",
            EndpointSpec(service="web", namespace="team", port=80, address="10.0.0.7", target_port=8080),
        ),
        (
            "web.team:http=[2001:DB8::0001]:80",
            EndpointSpec(service="web", namespace="team", port="http", address="2001:db8::1", target_port=80),
        ),
        ("a1-b:65535=[::1]:1", EndpointSpec(service="a1-b", port=65535, address="::1", target_port=1)),
    ],
)
def test_parse(text: str, want: EndpointSpec) -> None:
    assert parse_endpoint(text) == want


def test_str_is_the_canonical_flag() -> None:
    assert str(parse_endpoint("web:http=[2001:DB8::1]:80")) == "web.default:http=[2001:db8::1]:80"
    assert str(parse_endpoint("web=127.0.0.1:9")) == "web.default=127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("web", "expected SERVICE[.NAMESPACE][:PORT]=ADDRESS:PORT"),
        ("Web=1.2.3.4:5", "Service name 'Web' is not a DNS label"),
        ("1web=1.2.3.4:5", "Service name '1web' is not a DNS label"),
        ("=1.2.3.4:5", "Service name '' is not a DNS label"),
        ("web.Team=1.2.3.4:5", "namespace 'Team' is not a DNS label"),
        ("web.=1.2.3.4:5", "namespace '' is not a DNS label"),
        ("web:0=1.2.3.4:5", "Service port '0' is not a number from 1 to 65535"),
        ("web:70000=1.2.3.4:5", "Service port '70000' is not a number from 1 to 65535"),
        ("web:HTTP=1.2.3.4:5", "Service port name 'HTTP' is not a DNS label"),
        ("web:=1.2.3.4:5", "Service port name '' is not a DNS label"),
        ("web=1.2.3.4", "expected ADDRESS:PORT after '='"),
        ("web=1.2.3.4:", "port '' is not a number from 1 to 65535"),
        ("web=1.2.3.4:x", "port 'x' is not a number from 1 to 65535"),
        ("web=host.example:80", "'host.example' is not an IP address"),
        ("web=1.2.3.256:80", "'1.2.3.256' is not an IP address"),
        ("web=::1:80", "IPv6 address '::1' must be in brackets: [::1]:80"),
        ("web=[::1]80", "expected [IPv6]:PORT after '='"),
        ("web=[::1:80", "expected [IPv6]:PORT after '='"),
        ("web=[1.2.3.4]:80", "'1.2.3.4': brackets are for IPv6 addresses"),
        ("web=[fe80::1%eth0]:80", "'fe80::1%eth0': an endpoint address has no zone and is not IPv4-mapped"),
        ("web=[::ffff:1.2.3.4]:80", "'::ffff:1.2.3.4': an endpoint address has no zone and is not IPv4-mapped"),
        ("web=0.0.0.0:80", "'0.0.0.0' is not a unicast address"),
        ("web=[::]:80", "'::' is not a unicast address"),
        ("web=224.0.0.1:80", "'224.0.0.1' is not a unicast address"),
    ],
)
def test_parse_errors_name_the_value(text: str, why: str) -> None:
    with pytest.raises(EndpointsError) as info:
        parse_endpoint(text)
    assert str(info.value).startswith(f"invalid endpoints {text!r}: {why}")  # DNS-label messages go on
    assert isinstance(info.value, ValueError)


def test_parse_endpoint_is_an_argparse_type(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="mirrorgate")
    parser.add_argument("--endpoints", type=parse_endpoint, action="append", default=[])
    args = parser.parse_args(["--endpoints", "web=127.0.0.1:1", "--endpoints", "web:80=127.0.0.1:2"])
    assert [e.target_port for e in args.endpoints] == [1, 2]
    with pytest.raises(SystemExit):
        parser.parse_args(["--endpoints", "web=x:1"])
    assert "argument --endpoints: invalid endpoints 'web=x:1': 'x' is not an IP address" in capsys.readouterr().err


def slices(snap: Snapshot, *flags: str) -> tuple[EndpointSlice, ...]:
    return endpoint_slices(snap, [parse_endpoint(f) for f in flags])


def test_without_a_port_the_address_serves_every_service_port(snap: Snapshot) -> None:
    out = slices(snap, "web.team=127.0.0.1:9000")
    assert [(s.metadata.name, s.ports[0].name, s.ports[0].port) for s in out] == [
        ("web-mirrorgate-80-9000-ipv4", "http", 9000),
        ("web-mirrorgate-9901-9000-ipv4", "admin", 9000),
    ]
    slice_ = out[1]
    assert slice_.metadata.namespace == "team"
    assert slice_.metadata.labels["kubernetes.io/service-name"] == "web"
    assert (slice_.api_version, slice_.kind, slice_.address_type) == ("discovery.k8s.io/v1", "EndpointSlice", "IPv4")
    assert (slice_.ports[0].protocol, slice_.ports[0].app_protocol) == ("TCP", "http")
    assert [(e.addresses, e.conditions.ready) for e in slice_.endpoints] == [(("127.0.0.1",), True)]


def test_port_by_number_or_name_and_families_apart(snap: Snapshot) -> None:
    out = slices(
        snap,
        "web.team:http=10.0.0.2:8080",
        "web.team:80=10.0.0.1:8080",
        "web.team:80=10.0.0.1:8080",
        "web.team:80=[::1]:8080",
        "single=127.0.0.1:3000",
    )
    assert [(s.metadata.name, [e.addresses[0] for e in s.endpoints]) for s in out] == [
        ("single-mirrorgate-8080-3000-ipv4", ["127.0.0.1"]),
        ("web-mirrorgate-80-8080-ipv4", ["10.0.0.1", "10.0.0.2"]),
        ("web-mirrorgate-80-8080-ipv6", ["::1"]),
    ]
    assert out[0].ports[0].name == ""  # an unnamed Service port: the slice port is unnamed too
    assert all(admit(s) == [] for s in out)


def test_the_translator_finds_them(snap: Snapshot) -> None:
    specs = [parse_endpoint(f) for f in ("web.team:http=10.0.0.1:8080", "web.team=[::1]:9", "single=127.0.0.1:3000")]
    out = with_endpoints(snap, specs)
    web = next(s for s in out.services if s.metadata.name == "web")
    single = next(s for s in out.services if s.metadata.name == "single")
    got = {p.name: service_endpoints(out, web, p) for p in web.spec.ports}
    assert got == {
        "http": (UpstreamAddress(address="10.0.0.1", port=8080), UpstreamAddress(address="::1", port=9)),
        "admin": (UpstreamAddress(address="::1", port=9),),
    }
    assert service_endpoints(out, single, single.spec.ports[0]) == (UpstreamAddress(address="127.0.0.1", port=3000),)


def test_missing_services_and_ports_are_all_reported(snap: Snapshot) -> None:
    with pytest.raises(EndpointsError) as info:
        slices(snap, "web=127.0.0.1:1", "web.team:81=127.0.0.1:1", "web.team:grpc=127.0.0.1:1", "ext=127.0.0.1:1")
    assert info.value.problems == (
        "endpoints 'web.default=127.0.0.1:1': Service default/web is not defined in the files",
        "endpoints 'web.team:81=127.0.0.1:1': Service team/web has no port 81 (its ports: 80 (http), 9901 (admin))",
        "endpoints 'web.team:grpc=127.0.0.1:1': Service team/web has no port grpc (its ports: 80 (http), 9901 (admin))",
        "endpoints 'ext.default=127.0.0.1:1': Service default/ext is of type ExternalName",
    )


def test_no_specs_leave_the_snapshot_as_is(snap: Snapshot) -> None:
    assert with_endpoints(snap, []) is snap


def actions(table: RoutingTable) -> Iterator[Action]:
    for server in table.servers:
        for listener in server.listeners:
            if listener.default_action is not None:
                yield listener.default_action
            for vhost in listener.virtual_hosts:
                yield from (r.action for r in vhost.routes)


def service_backends(table: RoutingTable) -> list[Backend]:
    return [b for a in actions(table) for b in a.backends if b.name.startswith("service/")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_without_their_slices_get_endpoints_from_specs(path: Path) -> None:
    result = load_paths([str(path)])
    assert result.errors == ()
    bare = Snapshot.of(o for o in result.snapshot.objects() if not isinstance(o, EndpointSlice))
    assert all(not b.endpoints for b in service_backends(translate(bare).table))
    specs = [
        parse_endpoint(f"{s.metadata.name}.{s.metadata.namespace}=127.0.0.{i + 1}:{9000 + i}")
        for i, s in enumerate(bare.services)
        if s.spec.type != "ExternalName"  # resolved by name, it takes no endpoints
    ]
    table = translate(with_endpoints(bare, specs)).table
    backends = service_backends(table)
    assert backends
    by_name = {
        f"service/{s.namespace}/{s.service}": UpstreamAddress(address=s.address, port=s.target_port) for s in specs
    }
    for b in backends:
        assert b.endpoints == (by_name[b.name.rpartition(":")[0]],), b.name
    mirrors = [m for a in actions(table) for b in a.backends for m in b.filters.mirrors + a.filters.mirrors]
    assert all(m.endpoints or m.external for m in mirrors)
