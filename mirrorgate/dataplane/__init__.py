"""The data plane: compiled matchers, the HTTP/1.1 server protocol, exchanges and local replies.

Dependency rule (checked by ``tests/test_layers.py``): this package imports ``mirrorgate.ir``,
``mirrorgate.errors``, ``mirrorgate.upstream``, ``mirrorgate.mirror``, ``mirrorgate.wire`` and
``mirrorgate.settings``; never the Kubernetes model or the translator, and ``mirror`` never
imports this package.
"""
