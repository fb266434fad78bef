"""HTTP/1.1 wire helpers shared by the gateway (data plane, upstream, mirror) and the echo server.

Modules: ``hop`` (hop-by-hop header fields, RFC 9110 §7.6.1) and ``authority`` (host/port
splitting, ``address:port`` authorities and the ``-shadow`` Host of mirrored requests).

Rules:
1. A leaf: nothing here imports from the rest of ``mirrorgate``; every serving package may
   import it.
2. Pure functions and immutable tables (plus small bounded caches); no I/O, no asyncio, no logging.
3. Only what more than one side genuinely shares lives here: a helper used by one package stays
   in that package.
"""
