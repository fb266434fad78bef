"""Sampling: one uniform draw per request, shared by all its mirrors (the dispatcher's rule 1),
seeded RNG, counts within 3 binomial sigma, nested samples across mirrors; sampled out is not a
drop."""

import math
from random import Random

import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.ir.table import PPM
from mirrorgate.mirror import Dispatcher, MirrorConfig
from tests.support.waiting import until

from .conftest import MakeDispatcher, StartBackend, make_mirror, request_headers


def within_3_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 3 * math.sqrt(n * p * (1 - p))


def fired(d: Dispatcher, name: str) -> int:
    """Mirrors without endpoints: every fired mirror is dropped as ``no_endpoints``."""
    st = d.stats().mirrors.get(name)
    return st.dropped.get("no_endpoints", 0) if st is not None else 0


@pytest.mark.parametrize(("ppm", "seed"), [(420_000, 1), (50_000, 2), (200_000, 3), (5_000, 4)])
async def test_rate_within_three_sigma(ppm: int, seed: int, make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher(seed=seed)
    mirror = make_mirror(ppm=ppm)
    n = 5000
    for _ in range(n):
        d.submit((mirror,), b"GET", b"/", request_headers(), False)
    hits = fired(d, mirror.name)
    assert within_3_sigma(hits, n, ppm / PPM)
    st = d.stats()
    assert st.sampled_out == n - hits  # counted, but not as a drop
    assert "sampled_out" not in st.dropped


async def test_zero_never_and_full_always(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher()
    never, always = make_mirror(k=0, ppm=0), make_mirror(k=1, ppm=PPM)
    for _ in range(1000):
        d.submit((never, always), b"GET", b"/", request_headers(), False)
    assert fired(d, never.name) == 0
    assert fired(d, always.name) == 1000


async def test_smaller_sample_is_a_subset_of_the_larger(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher(seed=11)
    five, ten = make_mirror(k=0, ppm=50_000), make_mirror(k=1, ppm=100_000)
    both = only_ten = 0
    for _ in range(4000):
        before5, before10 = fired(d, five.name), fired(d, ten.name)
        d.submit((five, ten), b"GET", b"/", request_headers(), False)
        hit5, hit10 = fired(d, five.name) > before5, fired(d, ten.name) > before10
        assert not (hit5 and not hit10), "a 5% mirror fired where the 10% one did not"
        both += hit5
        only_ten += hit10 and not hit5
    assert within_3_sigma(both, 4000, 0.05)
    assert within_3_sigma(both + only_ten, 4000, 0.10)


async def test_one_draw_per_request_whatever_the_number_of_mirrors() -> None:
    rng = Random(5)
    d = Dispatcher(MirrorConfig(), registry=CollectorRegistry(), rng=rng)
    mirrors = tuple(make_mirror(k=k, ppm=300_000) for k in range(4))
    expected = Random(5)
    for _ in range(200):
        d.submit(mirrors, b"GET", b"/", request_headers(), False)
        expected.randrange(PPM)
    assert rng.getstate() == expected.getstate()
    await d.shutdown()


async def test_percent_over_real_sockets(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    """GEP-3171's ``percent: 42`` against a real backend: what arrives is what was counted."""
    b = await start_backend()
    d = make_dispatcher(seed=42)
    mirror = make_mirror(b.endpoint, ppm=420_000)
    n = 1000
    for i in range(n):
        d.submit((mirror,), b"GET", b"/r/%d" % i, request_headers(), False)
        if i % 100 == 99:
            await until(lambda: not d.tasks)
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.completed.get("2xx") == st.sent == len(b.seen)
    assert st.sent + st.sampled_out == n
    assert within_3_sigma(st.sent, n, 0.42)
