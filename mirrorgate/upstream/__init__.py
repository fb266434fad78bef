"""Upstream HTTP/1.1: one connection (``connection.py``) and the keyed keep-alive pool (``pool.py``).

Dependency rule: imports ``mirrorgate.errors`` and ``mirrorgate.wire`` only; knows nothing of routes or exchanges beyond
the ``ResponseSink`` callbacks it drives.
"""
