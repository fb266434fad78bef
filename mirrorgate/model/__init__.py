"""The typed, frozen mirror of the Kubernetes objects mirrorgate reads (input only).

Rules:
1. Structs are ``msgspec.Struct(frozen=True, kw_only=True)``; sequences are tuples.
2. Field names are snake_case and map to the Kubernetes camelCase names (``rename="camel"``).
3. ``spec`` structs forbid unknown fields; ``metadata`` ignores them.
4. Optional fields whose *presence* matters to a CEL rule (``has(self.percent)``) are ``X | None``.
5. This package imports nothing from ``mirrorgate`` but ``mirrorgate.errors``; it performs no I/O.
"""
