"""ObjectMeta subset, ObjectKey and the base class every modelled object derives from.

Modelled objects are frozen trees decoded from data: they cannot form a reference cycle, so they
are not tracked by the cyclic garbage collector (``gc=False``), which would otherwise walk every
object of a large configuration on each full collection.
"""

from typing import Any, Final, NamedTuple

import msgspec

# The byte quantities of the mirrorgate.dev kinds (GatewayConfig sizes, MirrorPolicy's
# ``maxBodyLag``): an integer, or ``<n>`` with one of these suffixes (``64Ki``).
QUANTITY_UNITS: Final = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity_bytes(value: int | str) -> int:
    """A byte quantity admission accepted, in bytes (``64Ki`` -> 65536)."""
    if isinstance(value, int):
        return value
    for suffix, unit in QUANTITY_UNITS.items():
        if value.endswith(suffix):
            return int(value.removesuffix(suffix)) * unit
    return int(value)


class ObjectKey(NamedTuple):
    """Identity of one object: ``(kind, namespace, name)``; sorts deterministically."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


class ObjectMeta(msgspec.Struct, frozen=True, kw_only=True, rename="camel", gc=False):
    """The part of ``metadata`` mirrorgate uses; other fields are ignored."""

    name: str = ""
    namespace: str = "default"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    generation: int = 1
    creation_timestamp: str = ""
    uid: str = ""


class Resource(msgspec.Struct, frozen=True, kw_only=True, rename="camel", gc=False):
    """Common envelope: apiVersion, kind, metadata."""

    api_version: str
    kind: str
    metadata: ObjectMeta

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, self.metadata.namespace, self.metadata.name)


# A LabelSelector (matchLabels / matchExpressions), shared by Namespaces selectors.
class LabelSelectorRequirement(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True, gc=False
):
    key: str
    operator: str
    values: tuple[str, ...] = ()


class LabelSelector(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True, gc=False):
    match_labels: dict[str, str] = msgspec.field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Kubernetes label-selector semantics (an empty selector matches everything)."""
        for k, v in self.match_labels.items():
            if labels.get(k) != v:
                return False
        return all(_requirement_matches(r, labels) for r in self.match_expressions)


def _requirement_matches(req: LabelSelectorRequirement, labels: dict[str, str]) -> bool:
    op = req.operator
    if op == "In":
        return req.key in labels and labels[req.key] in req.values
    if op == "NotIn":
        return req.key not in labels or labels[req.key] not in req.values
    if op == "Exists":
        return req.key in labels
    if op == "DoesNotExist":
        return req.key not in labels
    return False


JSON = Any


class Spec(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True, gc=False):
    """Base of every ``spec`` struct: camelCase names, unknown fields rejected."""
