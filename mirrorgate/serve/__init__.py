"""The gateway process: configuration in, routing tables served, until a signal.

Modules, each importing only the ones above it in this list (no cycles), and nothing in
``dataplane``, ``mirror``, ``upstream`` or ``admin`` imports this package:

- ``config``: ``RunConfig``, startup errors, loading ``-f`` paths into a ``Loaded`` configuration.
- ``logs``, ``signals``: logging setup; loop signal handlers and task cleanup.
- ``report``: what a configuration serves and what is wrong with it, as lines (pure).
- ``source``: ``ConfigSource``, what yields configurations (``FileSource``: the ``-f`` paths).
- ``apply``: the one path a configuration takes to be served: load off the loop, check the
  table's invariants, prepare (compile), apply (swap); ``Reloader``.
- ``plane``: ``DataPlane``, one process's listening sockets and shared state.
- ``admin``: the admin server of a process and its ``/status`` document.
- ``single``: one process serving a source. ``worker``, ``supervisor``: ``--workers N``.
"""
