"""Request mirroring: sampling, isolation and the body tee behind the data plane's mirror hook.

``serve/plane.py``'s ``DataPlane`` installs one ``Dispatcher`` per process as
``GatewayState.mirror``; the exchange calls ``Dispatcher.submit`` once per request whose rule has
mirrors and never awaits anything here.
See ``docs/mirroring.md`` for the semantics and the defaults.
"""

from mirrorgate.mirror.config import DropReason, MirrorConfig
from mirrorgate.mirror.dispatcher import Dispatcher
from mirrorgate.mirror.metrics import MirrorStats, Stats

__all__ = ["Dispatcher", "DropReason", "MirrorConfig", "MirrorStats", "Stats"]
