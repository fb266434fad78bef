"""CRD-level admission: the schema limits and CEL rules the apiserver enforces (stub)."""

from mirrorgate.errors import FieldError
from mirrorgate.model.meta import Resource


def admit(obj: Resource) -> list[FieldError]:
    """Return every admission violation of ``obj`` (empty when the apiserver would accept it)."""
    return []
