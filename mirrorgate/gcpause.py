"""``paused_gc()``: the cyclic garbage collector paused around one bulk computation.

Rules:
1. For work that allocates many objects and keeps or drops them without forming reference
   cycles (building a routing table, compiling it, dumping it): each collection during such work
   walks every tracked object of the process, which for a large configuration was a quarter of
   the time; reference counting still frees everything as usual.
2. The collector is re-enabled on exit only when it was enabled on entry, so nested or
   concurrent pauses (a load thread beside the serving loop) leave it enabled in the end.
3. Cycles made meanwhile (by any thread) are not lost: the next collection after the pause
   finds them.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
