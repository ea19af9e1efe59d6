"""The priority-queue template in Python, for libcachesim's `PluginCache` (Python callbacks).

This is what running a generated priority() costs without our native template: the same
policy (priority on insert and on every hit, evict the least (priority, tie), lazy
increase-key, ghost history as large as the cache, percentiles from a 256-object sample
every 1024 requests), written in plain Python with heapq and dicts. bench/cache measures it
side by side with the C template; tests/cache/test_pyref.py checks that both evict the same
objects for priorities that do not read percentiles (the samples differ).

    from policyforge.tasks.cache.pyref import plugin_cache
    cache = plugin_cache(lambda o, c: o.last_access, cache_size=1000)
    cache.process_trace(reader)

priority(obj, ctx) sees the fields of the C template's struct pf_obj / struct pf_ctx as
attributes. Helpers pf_div, pf_log, pf_min, pf_max are provided.
"""
from __future__ import annotations

import heapq
import math
import random
from typing import Callable

STATS_PERIOD = 1024
STATS_SAMPLE = 256


def pf_div(a: float, b: float) -> float:
    return 0.0 if b == 0 else a / b


def pf_log(a: float) -> float:
    return math.log1p(abs(a))


pf_min, pf_max = min, max


M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    """splitmix64's finalizer, as the C template's pf_mix64."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Sketch:
    """The C template's count-min sketch (pf_cache_stats.h): 4 rows of 8-bit saturating
    counters, each a power of two at least 4 x `guess` wide, halved every 10 x `guess` adds."""

    def __init__(self, guess: int) -> None:
        w = 1
        while w < 4 * guess:
            w <<= 1
        self.mask, self.width = w - 1, w
        self.cells = bytearray(4 * w)
        self.window, self.n = 10 * guess, 0

    def add(self, obj_id: int) -> float:
        least = 255
        for k in range(4):
            i = k * self.width + (mix64((obj_id + (k + 1) * 0x9E3779B97F4A7C15) & M64) & self.mask)
            if self.cells[i] < 255:
                self.cells[i] += 1
            least = min(least, self.cells[i])
        self.n += 1
        if self.n == self.window:
            self.n = 0
            self.cells = bytearray(c >> 1 for c in self.cells)
        return float(least)


class Obj:
    __slots__ = ("count", "last_access", "insert_time", "size", "ghost_count", "ghost_age", "ghost_gap",
                 "irr", "dfreq", "sketch", "total", "prio", "tie", "nprio",
                 "ntie")


class Ctx:
    __slots__ = ("now", "n_objs", "cache_size", "count_p50", "count_p90", "age_p50", "age_p90",
                 "size_p50", "size_p90", "ghost_hits", "once")

    def __init__(self, cache_size: float) -> None:
        for name in self.__slots__:
            setattr(self, name, 0.0)
        self.cache_size = float(cache_size)


class PyTemplate:
    """The template's state and its five hooks."""

    def __init__(self, priority: Callable[[Obj, Ctx], float], cache_size: int,
                 ghosts: bool = True, stats: bool = True, sketch: bool = False) -> None:
        self.priority = priority
        self.objs: dict[int, Obj] = {}
        self.heap: list[tuple[float, int, int]] = []   # (prio, tie, obj_id); stale/garbage allowed
        # ghost history: a ring of the latest evictions, as in the C template (a ghost that
        # comes back keeps its slot until the ring wraps)
        # id -> count, age, evicted, slot, last access, dfreq, total
        self.ghosts: dict[int, tuple[float, float, float, int, float, float, float]] = {}
        guess = cache_size + 16 if cache_size < (1 << 20) else 1 << 20
        self.ring: list[int | None] = [None] * guess
        self.sketch = Sketch(guess) if sketch else None
        self.head = 0
        self.keep_ghosts, self.keep_stats = ghosts, stats
        self.ctx = Ctx(cache_size)
        self.capacity = cache_size
        self.now = 0
        self.seq = 0
        self.misses = self.ghost_hits = 0
        self.n_once = 0                         # cached objects with count 1 (ctx.once)
        self.rng = random.Random(1)

    def _tick(self) -> None:
        self.now += 1
        self.ctx.now = float(self.now)
        if (self.keep_ghosts or self.keep_stats) and self.now % STATS_PERIOD == 0:
            self._refresh()

    def _refresh(self) -> None:
        c = self.ctx
        c.ghost_hits = self.ghost_hits / self.misses if self.misses else 0.0
        self.misses = self.ghost_hits = 0
        if not self.keep_stats or not self.objs:
            return
        objs = list(self.objs.values())
        if len(objs) > STATS_SAMPLE:
            objs = self.rng.sample(objs, STATS_SAMPLE)
        n = len(objs)
        for name, values in (("count", [o.count for o in objs]), ("size", [o.size for o in objs]),
                             ("age", [self.now - o.last_access for o in objs])):
            values.sort()
            setattr(c, name + "_p50", values[n // 2])
            setattr(c, name + "_p90", values[(n * 9) // 10])

    def _key(self, o: Obj) -> None:
        n = len(self.objs)
        self.ctx.n_objs = float(n)
        self.ctx.once = self.n_once / n if n else 0.0
        p = self.priority(o, self.ctx)
        o.prio = p if p == p else -math.inf
        self.seq += 1
        o.tie = self.seq

    def _push(self, obj_id: int, o: Obj) -> None:
        o.nprio, o.ntie = o.prio, o.tie
        heapq.heappush(self.heap, (o.prio, o.tie, obj_id))

    # ---- hooks ---------------------------------------------------------------------
    def hit(self, req) -> None:
        self._tick()
        seen = self.sketch.add(req.obj_id) if self.sketch else 0.0
        o = self.objs.get(req.obj_id)
        if o is None:
            return
        since = self.now - o.last_access
        o.irr = since
        o.dfreq = 1 + o.dfreq * 2.0 ** (-since / (len(self.objs) or 1))
        self.n_once -= o.count == 1
        o.count += 1
        o.total += 1
        o.last_access = float(self.now)
        o.size = float(req.obj_size)
        o.sketch = seen
        self._key(o)
        if o.prio < o.nprio:
            self._push(req.obj_id, o)

    def miss(self, req) -> None:
        self._tick()
        seen = self.sketch.add(req.obj_id) if self.sketch else 0.0
        self.misses += 1
        if req.obj_size > self.capacity:
            return
        o = Obj()
        o.count = 1.0
        o.last_access = o.insert_time = float(self.now)
        o.size = float(req.obj_size)
        o.ghost_count = o.ghost_age = o.ghost_gap = o.irr = 0.0
        o.dfreq = o.total = 1.0
        o.sketch = seen
        g = self.ghosts.pop(req.obj_id, None) if self.keep_ghosts else None
        if g is not None:
            o.ghost_count, o.ghost_age, o.ghost_gap = g[0], g[1], self.now - g[2]
            o.irr = self.now - g[4]
            o.dfreq = 1 + g[5] * 2.0 ** (-o.irr / (len(self.objs) or 1))
            o.total = 1 + g[6]
            self.ghost_hits += 1
        self._key(o)
        self.objs[req.obj_id] = o
        self.n_once += 1
        self._push(req.obj_id, o)

    def evict(self, req) -> int:
        heap = self.heap
        while True:
            prio, tie, obj_id = heap[0]
            o = self.objs.get(obj_id)
            if o is None or o.ntie != tie:          # garbage
                heapq.heappop(heap)
            elif o.tie == tie:                      # current: the minimum
                heapq.heappop(heap)
                break
            else:                                   # stale: re-key
                o.nprio, o.ntie = o.prio, o.tie
                heapq.heapreplace(heap, (o.prio, o.tie, obj_id))
        if self.keep_ghosts:
            self._remember(obj_id, o)
        self.n_once -= o.count == 1
        del self.objs[obj_id]
        if len(heap) > 2 * len(self.objs) + 64:     # drop garbage
            self.heap = [(p, t, i) for p, t, i in heap if i in self.objs and self.objs[i].ntie == t]
            heapq.heapify(self.heap)
        return obj_id

    def _remember(self, obj_id: int, o: Obj) -> None:
        ring = self.ring
        if len(self.objs) + 1 > len(ring):        # as many ghosts as cached objects: grow
            old, cap = ring, len(ring)
            self.ring = ring = [None] * (2 * cap)
            for i in range(cap):                    # oldest first, from slot 0
                slot = (self.head + i) % cap
                g = old[slot]
                if g is not None and g in self.ghosts and self.ghosts[g][3] == slot:
                    ring[i] = g
                    self.ghosts[g] = self.ghosts[g][:3] + (i,) + self.ghosts[g][4:]
            self.head = cap
        old = ring[self.head]
        if old is not None and old in self.ghosts and self.ghosts[old][3] == self.head:
            del self.ghosts[old]
        self.ghosts[obj_id] = (o.count, self.now - o.insert_time, float(self.now), self.head, o.last_access, o.dfreq,
                               o.total)
        ring[self.head] = obj_id
        self.head = (self.head + 1) % len(ring)

    def remove(self, obj_id: int) -> None:
        o = self.objs.pop(obj_id, None)
        if o is not None:
            self.n_once -= o.count == 1


def plugin_cache(priority: Callable[[Obj, Ctx], float], cache_size: int, hashpower: int = 20,
                 ghosts: bool = True, stats: bool = True, sketch: bool = False):
    """A libcachesim.PluginCache running `priority` in the Python template."""
    import libcachesim as lcs

    return lcs.PluginCache(
        cache_size,
        lambda params: PyTemplate(priority, cache_size, ghosts, stats, sketch),
        lambda t, req: t.hit(req),
        lambda t, req: t.miss(req),
        lambda t, req: t.evict(req),
        lambda t, obj_id: t.remove(obj_id),
        lambda t: None,
        hashpower=hashpower)
