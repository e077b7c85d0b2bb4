"""Trails: a bounded ring of recent positions per person, at full rate when it fits and thinned evenly when not,
the same on the engine's and the console's side of the wire."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.protocol.trails import TrailRing, decode_trails, encode_trails


def _walk(ring: TrailRing, person: int, t0: float, seconds: float, hz: float) -> tuple[np.ndarray, np.ndarray]:
    ts = t0 + np.arange(int(seconds * hz)) / hz
    xy = np.column_stack([ts - t0, 2.0 * (ts - t0)])  # 1 m/s east, 2 m/s north
    ring.add(np.full(len(ts), person), xy, ts)
    return ts, xy


def test_a_few_people_keep_every_fix_of_ten_minutes_at_10_hz():
    ring = TrailRing(3, span_s=600, rate_hz=10)
    assert ring.n == 6600 and ring.min_dt_s == pytest.approx(1 / 11)
    ts, xy = _walk(ring, 1, 1000.0, 600, 10)
    got_ts, got_xy = ring.trail(1)
    assert len(got_ts) == 6000
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_allclose(got_xy, xy, atol=1e-4)
    assert ring.count.tolist() == [0, 6000, 0]
    since, _ = ring.trail(1, since_ts_s=1000.0 + 540)  # the last minute: 600 fixes
    assert len(since) == 600 and since[0] == pytest.approx(1540.0)


def test_the_ring_overwrites_the_oldest_and_stays_in_time_order():
    ring = TrailRing(1, span_s=10, rate_hz=1, budget_bytes=1 << 20)
    assert ring.n == 16  # at least 16 slots; 10 s at 1 Hz (+10 %) is 11
    ts, _ = _walk(ring, 0, 0.0, 40, 1)
    got, _ = ring.trail(0)
    np.testing.assert_array_equal(got, ts[-16:])
    assert ring.head[0] == 40 % 16


def test_many_people_are_thinned_evenly_to_fit_the_budget_and_still_span_ten_minutes():
    ring = TrailRing(10_000, span_s=600, rate_hz=10, budget_bytes=64 << 20)
    assert ring.n == (64 << 20) // (16 * 10_000) == 419
    assert ring.min_dt_s == pytest.approx(600 / 419)
    assert ring.ts_s.nbytes + ring.xy_m.nbytes <= 64 << 20
    _walk(ring, 7, 0.0, 900, 10)
    got, _ = ring.trail(7)
    assert len(got) == 419
    assert got[-1] - got[0] >= 600 - 2 * ring.min_dt_s  # the newest 10 minutes, evenly thinned
    assert np.all(np.diff(got) >= ring.min_dt_s - 1e-9)


def test_out_of_order_duplicates_unknown_people_and_nan_fixes_are_skipped():
    ring = TrailRing(2, span_s=60, rate_hz=1)
    kept = ring.add(np.array([1, 1, 1, 5, -1, 0]), np.array([[3, 3], [1, 1], [2, 2], [9, 9], [9, 9], [np.nan, 0]]),
                    np.array([3.0, 1.0, 2.0, 1.0, 1.0, 1.0]))
    assert kept == 3  # person 1 at 1, 2, 3 s (sorted); 5 and -1 unknown; person 0's fix is NaN
    ts, xy = ring.trail(1)
    assert ts.tolist() == [1.0, 2.0, 3.0] and xy[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert ring.add(np.array([1]), np.array([[4.0, 4.0]]), np.array([2.5])) == 0  # older than the newest
    assert ring.count.tolist() == [0, 3]


def test_the_wire_form_round_trips_thinned_and_refuses_what_does_not_fit():
    ring = TrailRing(4, span_s=600, rate_hz=10)
    _walk(ring, 2, 100.0, 20, 10)
    _walk(ring, 0, 100.0, 5, 10)
    person, ts, xy = ring.export(step_s=1.0)
    # one sample a second (the first of each second) and the newest: 5 + 1 for person 0, 20 + 1 for person 2
    assert np.bincount(person, minlength=4).tolist() == [6, 0, 21, 0]
    assert ts[person == 2][:3].tolist() == pytest.approx([100.0, 101.0, 102.0])
    doc = encode_trails(person, ts, xy)
    back = decode_trails(doc, 4)
    np.testing.assert_array_equal(back[0], person)
    np.testing.assert_array_equal(back[1], ts)
    np.testing.assert_allclose(back[2], xy)
    with pytest.raises(ValueError, match="outside 0..1"):
        decode_trails(doc, 2)
    with pytest.raises(ValueError, match="unequal length"):
        decode_trails({**doc, "n": 3}, 4)
    with pytest.raises(ValueError, match="bad encoding"):
        decode_trails({**doc, "ts_s": "not base64!"}, 4)
    copy = TrailRing(4, span_s=600, rate_hz=10)
    copy.add(*back[:1], back[2], back[1])
    np.testing.assert_array_equal(copy.trail(2)[0], ts[person == 2])


def _export_reference(ts_s, xy_m, head, count, since, step):
    """Plain numpy: every ring slot in time order, kept by the same rules."""
    n = ts_s.shape[1]
    k = np.arange(n)
    slots = (head[:, None] - count[:, None] + k[None, :]) % n
    ts = np.take_along_axis(ts_s, slots, axis=1)
    keep = (k[None, :] < count[:, None]) & (ts >= since)
    if step > 0:
        bucket = np.floor(ts / step)
        prev = np.full_like(bucket, np.nan)
        prev[:, 1:] = np.where(keep[:, :-1], bucket[:, :-1], np.nan)  # the sample before, if it is in the period
        newest = np.zeros_like(keep)
        has = count > 0
        newest[np.flatnonzero(has), count[has] - 1] = True
        keep &= (bucket != prev) | newest
    person, col = np.nonzero(keep)
    return person, ts[person, col], xy_m[person, slots[person, col]]


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_export_matches_a_plain_numpy_reference_on_random_rings(seed):
    from kernels.trails import trail_export

    rng = np.random.default_rng(seed)
    p, n = int(rng.integers(1, 30)), int(rng.integers(16, 200))
    ring = TrailRing(p, span_s=n / 10, rate_hz=10, budget_bytes=1 << 30)
    for _ in range(int(rng.integers(1, 4))):  # several rounds: rings wrap at different heads
        m = int(rng.integers(0, 3 * n * p // 2 + 1))
        ring.add(rng.integers(0, p, m), rng.normal(50, 20, (m, 2)), rng.uniform(0, 3 * n / 10, m))
    since = float(rng.uniform(-5, 3 * n / 10))
    for step in (0.0, 0.35, 1.0, 7.0):
        got = trail_export(ring.ts_s, ring.xy_m, ring.head, ring.count, since, step)
        want = _export_reference(ring.ts_s, ring.xy_m, ring.head, ring.count, since, step)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("seed", range(4))
def test_the_compiled_append_matches_a_plain_python_reference_on_random_fixes(seed):
    rng = np.random.default_rng(100 + seed)
    p = int(rng.integers(1, 12))
    ring = TrailRing(p, span_s=3.0, rate_hz=10, budget_bytes=1 << 30)  # 33 slots, min 1/11 s apart
    kept: list[list[tuple[float, float, float]]] = [[] for _ in range(p)]
    for _ in range(5):
        m = int(rng.integers(0, 200))
        who, xy, ts = rng.integers(-1, p + 1, m), rng.normal(0, 10, (m, 2)), rng.uniform(0, 20, m)
        xy[rng.random(m) < 0.05] = np.nan
        ring.add(who, xy, ts)
        for i, (x, y), t in sorted(zip(who, xy, ts, strict=True), key=lambda r: (r[0], r[2])):
            if not 0 <= i < p or not np.isfinite([x, y]).all():
                continue
            if kept[i] and not t >= kept[i][-1][0] + ring.min_dt_s:
                continue
            kept[i].append((t, np.float32(x), np.float32(y)))
    for i in range(p):
        want = kept[i][-ring.n:]
        ts, xy = ring.trail(i)
        assert ts.tolist() == [w[0] for w in want]
        assert xy.tolist() == [[w[1], w[2]] for w in want]
