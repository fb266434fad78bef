"""The data plane: compiled matchers, the HTTP/1.1 server protocol, exchanges and local replies.

Dependency rule (STYLE §3.2): this package imports ``mirrorgate.ir``, ``mirrorgate.errors`` and
``mirrorgate.upstream`` only; never the Kubernetes model or the translator.
"""
