"""The runtime tests' process fixtures (a real ``mirrorgate run`` with its log followed), reused."""

from tests.runtime.conftest import backends, gateways

__all__ = ["backends", "gateways"]
