"""Objects as an API server returns them (JSON dicts) -> admitted objects -> Snapshot.

Rules:
1. An object goes through the very steps a document of a file takes (``files.decode_document``:
   classify, convert, admission, wire safety), with ``origin`` standing where the file name
   stands, so the same object gives the same model and the same error text either way.
2. What the API server adds and mirrorgate computes or never reads is dropped first: ``status``
   (the statuses are ours to compute) and ``metadata`` fields the model ignores anyway
   (``managedFields``, ``resourceVersion``, ...).
3. Core kinds (Service, EndpointSlice, Namespace, Secret, ConfigMap) were validated by the API server against its own
   schema, which knows fields the model does not (``spec.sessionAffinityConfig``,
   ``endpoints[].deprecatedTopology``, ...): they are pruned to the model's fields before
   decoding. Gateway API kinds are decoded strictly: the CRD already pruned what it does not
   define, so an unknown field there is a field of a newer or experimental CRD that mirrorgate
   does not implement, and the object is refused with the file path's message.
4. A refused object is left out of the snapshot; its errors are returned with it, never raised.
5. Decoding and admission are pure functions of the object, and the API server gives every
   version of an object a new ``metadata.resourceVersion``: a ``DecodeCache`` keeps the outcome per
   (kind, namespace, name, resourceVersion) from one build to the next, so a change to one object
   decodes one object. Entries of objects no longer present are dropped at each build.
"""

from collections.abc import Iterable
from typing import Any

import msgspec
import msgspec.inspect as mi

from mirrorgate.errors import ConfigError
from mirrorgate.model.meta import ObjectKey, Resource
from mirrorgate.model.snapshot import KINDS, Snapshot
from mirrorgate.providers.files import DocumentResult, decode_document

PRUNED_KINDS = frozenset(
    {("", "Service"), ("discovery.k8s.io", "EndpointSlice"), ("", "Namespace"), ("", "Secret"), ("", "ConfigMap")}
)
_META_KEPT = ("name", "namespace", "labels", "annotations", "generation", "creationTimestamp", "uid")


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    """An object the API server holds that admission refused: its identity and the error lines."""

    key: ObjectKey
    generation: int
    errors: tuple[ConfigError, ...]

    @property
    def message(self) -> str:
        return "; ".join(str(e.error) for e in self.errors)


class ObjectsResult(msgspec.Struct, frozen=True, kw_only=True):
    snapshot: Snapshot
    refused: tuple[Refused, ...] = ()
    warnings: tuple[str, ...] = ()


def clean(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without ``status`` and the metadata the model never reads (rule 2), pruned to the
    model's fields for core kinds (rule 3)."""
    out = {k: v for k, v in body.items() if k != "status"}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: meta[k] for k in _META_KEPT if k in meta}
    group = str(body.get("apiVersion") or "").rpartition("/")[0]
    key = (group, str(body.get("kind") or ""))
    if key in PRUNED_KINDS:
        out = prune(out, mi.type_info(KINDS[key]))
    return out


def prune(value: Any, info: mi.Type) -> Any:
    """``value`` with every mapping key the model type ``info`` does not define removed, recursively."""
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType | mi.ListType | mi.VarTupleType)]
        return prune(value, structs[0]) if len(structs) == 1 else value
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        return {k: prune(v, fields[k]) for k, v in value.items() if k in fields}
    if isinstance(info, mi.ListType | mi.VarTupleType) and isinstance(value, list):
        return [prune(v, info.item_type) for v in value]
    return value


def decode_object(body: dict[str, Any], origin: str) -> tuple[Resource | None, list[ConfigError]]:
    """One object from the API server: the admitted model, or None and the errors (rule 1)."""
    result = decode_document(clean(body), origin)
    return result.obj, list(result.errors)


def identity(body: dict[str, Any]) -> tuple[ObjectKey, int]:
    """The (kind, namespace, name) and ``metadata.generation`` of a raw object."""
    raw = body.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    key = ObjectKey(str(body.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    generation = meta.get("generation")
    return key, generation if isinstance(generation, int) else 0


class DecodeCache:
    """Decode outcomes by (kind, namespace, name, resourceVersion) across builds (rule 5)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[ObjectKey, str], DocumentResult] = {}
        self._next: dict[tuple[ObjectKey, str], DocumentResult] = {}

    def decode(self, body: dict[str, Any], origin: str) -> DocumentResult:
        meta = body.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(version, str) or not version:
            return decode_document(clean(body), origin)
        key = (identity(body)[0], version)
        result = self.entries.get(key)
        if result is None:
            result = decode_document(clean(body), origin)
        self._next[key] = result
        return result

    def rotate(self) -> None:
        """End of a build: keep only what this build used."""
        self.entries, self._next = self._next, {}


def build_snapshot(bodies: Iterable[dict[str, Any]], origin: str, cache: DecodeCache | None = None) -> ObjectsResult:
    """Every admitted object in one snapshot; the refused ones listed with their errors (rule 4);
    ``cache`` skips objects decoded by an earlier build (rule 5)."""
    admitted: list[Resource] = []
    refused: list[Refused] = []
    warnings: list[str] = []
    for body in bodies:
        result = cache.decode(body, origin) if cache is not None else decode_document(clean(body), origin)
        warnings.extend(result.warnings)
        if result.obj is not None:
            admitted.append(result.obj)
        elif result.errors:
            key, generation = identity(body)
            refused.append(Refused(key=key, generation=generation, errors=result.errors))
    if cache is not None:
        cache.rotate()
    return ObjectsResult(snapshot=Snapshot.of(admitted), refused=tuple(refused), warnings=tuple(warnings))
