"""Kubernetes API access: connection settings, a narrow JSON client, reflectors and Lease election.

Rules of the package:

- It imports ``model`` and ``errors`` at most, never the serving packages; the later Kubernetes
  ``ConfigSource`` wires it to ``serve/``.
- ``kubernetes_asyncio`` is imported lazily (inside functions), so file mode never pays its
  import time; only ``client.py`` and ``kubeconfig.py`` touch it, so switching clients is a
  change to those two modules.
- Objects travel as plain JSON dicts (decoded with msgspec), never as generated model classes.
"""
