"""The routing table (IR): what the data plane serves, frozen and serialisable.

Rules:
1. The data plane reads only this package, never ``mirrorgate.model``.
2. Every value is decided here: names, ports, endpoints, parts-per-million, milliseconds.
3. Imports nothing from ``mirrorgate`` but ``mirrorgate.errors``.
"""
