"""The MirrorPolicy CRD (deploy/kubernetes/crds) and mirrorgate's own admission agree.

The CRD is what an API server enforces; ``providers/admission/mirrorpolicy.py`` is what the file
provider enforces. Every policy of the admission tables goes through both: the CRD's
``openAPIV3Schema`` (its defaults applied first, as the API server does; structure, limits and
patterns checked with ``jsonschema``; ``x-kubernetes-list-type`` set/map checked here), then its
``x-kubernetes-validations`` rules evaluated with a CEL evaluator (``celpy``) unless a blocking
schema error stopped them, as the API server's CEL gate does. Both must find problems at the same
field paths. The CRD object itself validates against the Kubernetes 1.32 schema in
``test_manifests.py`` like every other manifest of the base.
"""

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from random import Random
from typing import Any

import celpy
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from mirrorgate.model.meta import quantity_bytes
from mirrorgate.model.mirrorpolicy import HOST_TYPES, SAMPLE_MISSING
from mirrorgate.model.snapshot import VERSIONS
from mirrorgate.providers.admission.mirrorpolicy import LAG_AT_MOST, LAG_UNITS, MAX_BODY_LAG
from tests.providers.test_admission_mirrorpolicy import BACKEND, CASES, VALID, errs, policy

CRD = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "crds" / "mirrorgate.dev_mirrorpolicies.yaml"
BLOCKING = {"enum", "maxItems", "maxLength", "type", "required"}  # schema errors that stop CEL (the gate)
Schema = dict[str, Any]


@cache
def crd() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return doc


def schema() -> Schema:
    [version] = crd()["spec"]["versions"]
    found: Schema = version["schema"]["openAPIV3Schema"]
    return found


def defaulted(value: Any, node: Schema) -> Any:
    """``value`` with the schema's ``default``s filled in where a field is absent."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for name, sub in node["properties"].items():
            if name not in out and "default" in sub:
                out[name] = sub["default"]
            if name in out:
                out[name] = defaulted(out[name], sub)
        return out
    if isinstance(value, list) and "items" in node:
        return [defaulted(v, node["items"]) for v in value]
    return value


def dotted(parts: Iterator[Any] | list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def walk(value: Any, node: Schema, path: list[Any]) -> Iterator[tuple[list[Any], Any, Schema]]:
    """Every (path, value, schema) pair of the object."""
    yield path, value, node
    if isinstance(value, dict):
        for name, sub in (node.get("properties") or {}).items():
            if name in value:
                yield from walk(value[name], sub, [*path, name])
    elif isinstance(value, list) and "items" in node:
        for i, v in enumerate(value):
            yield from walk(v, node["items"], [*path, i])


@cache
def program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def list_type_errors(obj: Any) -> Iterator[str]:
    for path, value, node in walk(obj, schema(), []):
        if not isinstance(value, list):
            continue
        keys = node.get("x-kubernetes-list-map-keys")
        kind = node.get("x-kubernetes-list-type")
        seen: set[Any] = set()
        for i, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if kind == "map" and keys else item
            if kind in ("set", "map") and key in seen:
                yield dotted([*path, i])
            seen.add(key)


def crd_errors(spec: dict[str, Any]) -> set[str]:
    """The field paths the API server would report for a policy with ``spec`` (see the module doc)."""
    obj = {"apiVersion": "mirrorgate.dev/v1alpha1", "kind": "MirrorPolicy", "metadata": {"name": "p"}, "spec": spec}
    obj = defaulted(obj, schema())
    found = set()
    blocking = False
    for error in jsonschema.Draft7Validator(schema()).iter_errors(obj):
        found.add(dotted(list(error.absolute_path)))
        blocking = blocking or error.validator in BLOCKING
    found |= set(list_type_errors(obj))
    if blocking:
        return found
    for path, value, node in walk(obj, schema(), []):
        for rule in node.get("x-kubernetes-validations") or ():
            try:
                ok = bool(program(rule["rule"]).evaluate({"self": json_to_cel(value)}))
            except CELEvalError:  # an evaluation error fails the rule, as in the API server
                ok = False
            if not ok:
                found.add(dotted(path))
    return found


def admission_errors(spec: dict[str, Any]) -> set[str]:
    return {path for path, _ in errs(policy(**spec)) if path != "<nil>"}


@pytest.mark.parametrize("spec", VALID)
def test_the_crd_admits_what_admission_admits(spec: dict[str, Any]) -> None:
    assert admission_errors(spec) == set()
    assert crd_errors({"backendRef": BACKEND, **spec}) == set()


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_the_crd_refuses_what_admission_refuses_at_the_same_fields(spec: dict[str, Any], expected: object) -> None:
    paths = admission_errors(spec)
    assert paths, "each row of the table is an invalid policy"
    assert crd_errors({"backendRef": BACKEND, **spec}) == paths


def test_the_crd_serves_the_version_and_enums_mirrorgate_reads() -> None:
    spec = crd()["spec"]
    assert (spec["group"], spec["names"]["kind"], spec["scope"]) == ("mirrorgate.dev", "MirrorPolicy", "Namespaced")
    assert tuple(v["name"] for v in spec["versions"]) == VERSIONS[("mirrorgate.dev", "MirrorPolicy")]
    props = schema()["properties"]["spec"]["properties"]
    assert tuple(props["host"]["properties"]["type"]["enum"]) == HOST_TYPES
    assert tuple(props["sampleBy"]["properties"]["missing"]["enum"]) == SAMPLE_MISSING
    assert spec["versions"][0]["subresources"] == {"status": {}}


def test_every_cel_rule_compiles() -> None:
    rules = [r["rule"] for _, _, node in walk_schema(schema()) for r in node.get("x-kubernetes-validations") or ()]
    assert len(rules) == 9
    for rule in rules:
        program(rule)


def walk_schema(node: Schema) -> Iterator[tuple[None, None, Schema]]:
    yield None, None, node
    for sub in (node.get("properties") or {}).values():
        yield from walk_schema(sub)
    if "items" in node:
        yield from walk_schema(node["items"])


@pytest.mark.parametrize(("lag", "ok"), [(1, True), ("1Ki", True), (0, False), ("0", False), (True, False)])
def test_max_body_lag_is_an_int_or_string_of_at_least_one(lag: object, ok: bool) -> None:
    assert (crd_errors({"backendRef": BACKEND, "maxBodyLag": lag}) == set()) is ok


def test_the_lag_ceiling_rule_is_admissions_and_accepts_exactly_up_to_1gi() -> None:
    """The CEL rule bounding a ``maxBodyLag`` string carries admission's ``LAG_AT_MOST``, and that
    expression accepts a quantity exactly when it is at most ``MAX_BODY_LAG`` bytes."""
    node = schema()["properties"]["spec"]["properties"]["maxBodyLag"]
    (rule,) = node["x-kubernetes-validations"]
    assert rule["rule"] == f"type(self) == int || self.matches('{LAG_AT_MOST}')"
    assert node["maximum"] == MAX_BODY_LAG
    random = Random(7)
    for suffix, unit in LAG_UNITS:
        top = MAX_BODY_LAG // unit
        for n in {
            1,
            2,
            9,
            10,
            top - 1,
            top,
            top + 1,
            10 * top,
            *(random.randrange(1, 3 * top + 2) for _ in range(200)),
        }:
            if n < 1:
                continue
            text = f"{n}{suffix}"
            assert (re.match(LAG_AT_MOST, text) is not None) is (quantity_bytes(text) <= MAX_BODY_LAG), text
            ok = bool(program(rule["rule"]).evaluate({"self": json_to_cel(text)}))
            assert ok is (quantity_bytes(text) <= MAX_BODY_LAG), text
