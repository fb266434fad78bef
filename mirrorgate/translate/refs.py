"""Pure predicates over ReferenceGrants: a reference from one namespace to another is allowed only
when a ReferenceGrant in the target namespace lists the source (group, kind, namespace) in
``spec.from`` and the target (group, kind, optional name) in ``spec.to`` (GEP-709)."""

from collections.abc import Iterable

from mirrorgate.model.core import ReferenceGrant

ROUTE_GROUP = "gateway.networking.k8s.io"


def reference_permitted(
    grants: Iterable[ReferenceGrant],
    *,
    from_namespace: str,
    from_kind: str,
    from_group: str = ROUTE_GROUP,
    to_group: str,
    to_kind: str,
    to_namespace: str,
    to_name: str,
) -> bool:
    """Same-namespace references are always permitted; others need a grant in the *target*
    namespace whose ``from`` names the source (group, kind, namespace) and whose ``to`` names the
    target (group, kind and, when set, name)."""
    if from_namespace == to_namespace:
        return True
    for grant in grants:
        if grant.metadata.namespace != to_namespace:
            continue
        froms = any(
            f.group == from_group and f.kind == from_kind and f.namespace == from_namespace for f in grant.spec.from_
        )
        tos = any(
            t.group == to_group and t.kind == to_kind and (t.name is None or t.name == to_name) for t in grant.spec.to
        )
        if froms and tos:
            return True
    return False
