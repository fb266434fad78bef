"""The control-plane core: Snapshot -> (RoutingTable, statuses). Pure functions only.

Rules:
1. No I/O, no asyncio, no logging, no state kept between calls.
2. Input order never matters: the Snapshot is sorted and every output is sorted.
3. User mistakes become status conditions, never exceptions; raising anything is a bug.
"""

from mirrorgate.translate.translator import TranslateOptions, TranslateResult, translate

__all__ = ["TranslateOptions", "TranslateResult", "translate"]
