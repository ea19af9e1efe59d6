"""Two Python implementations of the EPLB reference policy, written from the description of
DeepSeek's EPLB (docs/eplb.md): a plain per-layer one (the readable specification, the shape of
DeepSeek's PyTorch code) and a numpy one vectorized across layers. Both must agree exactly
with the native op's reference rules (tests/eplb)."""
from __future__ import annotations

import numpy as np


def _packing(w: list[float], n_bins: int, capacity: int) -> tuple[list[int], list[int]]:
    """Heaviest first onto the lightest bin that is not full (ties: lower index)."""
    order = sorted(range(len(w)), key=lambda i: -w[i])
    load = [0.0] * n_bins
    count = [0] * n_bins
    bin_of = [0] * len(w)
    rank_of = [0] * len(w)
    for i in order:
        best = min((b for b in range(n_bins) if count[b] < capacity), key=lambda b: load[b])
        bin_of[i], rank_of[i] = best, count[best]
        count[best] += 1
        load[best] += w[i]
    return bin_of, rank_of


def rebalance_layer(load: list[float], R: int, G: int, N: int, M: int) -> tuple[list[int], list[int]]:
    E = len(load)
    if G % N:
        G, N = 1, 1
    epg, gpn, spn, epn, gpus, spg = E // G, G // N, R // N, E // N, M // N, R // M
    group_load = [sum(load[g * epg:(g + 1) * epg]) for g in range(G)]
    g_bin, g_rank = _packing(group_load, N, gpn)
    phy2log = [0] * R
    logcnt = [0] * E
    for node in range(N):
        experts = [0] * epn
        for g in range(G):
            if g_bin[g] == node:
                for j in range(epg):
                    experts[g_rank[g] * epg + j] = g * epg + j
        w = [load[e] for e in experts]
        cnt = [1] * epn
        phy = list(range(epn))
        for _ in range(epn, spn):
            best = max(range(epn), key=lambda i: (w[i] / cnt[i], -i))
            cnt[best] += 1
            phy.append(best)
        p_bin, p_rank = _packing([w[p] / cnt[p] for p in phy], gpus, spg)
        for k, p in enumerate(phy):
            phy2log[node * spn + p_bin[k] * spg + p_rank[k]] = experts[p]
        for i, e in enumerate(experts):
            logcnt[e] = cnt[i]
    return phy2log, logcnt


def log2phy_of(phy2log: np.ndarray, logcnt: np.ndarray) -> np.ndarray:
    L, R = phy2log.shape
    E = logcnt.shape[1]
    maxcnt = max(1, int(logcnt.max()))
    out = np.full((L, E, maxcnt), -1, dtype=np.int64)
    for l in range(L):
        fill = np.zeros(E, dtype=np.int64)
        for s in range(R):
            e = phy2log[l, s]
            out[l, e, fill[e]] = s
            fill[e] += 1
    return out


def rebalance_python(weight, R: int, G: int, N: int, M: int):
    """The readable reference: one layer at a time, Python loops."""
    weight = np.asarray(weight, dtype=np.float64)
    rows = [rebalance_layer(list(map(float, w)), R, G, N, M) for w in weight]
    phy2log = np.array([r[0] for r in rows], dtype=np.int64)
    logcnt = np.array([r[1] for r in rows], dtype=np.int64)
    return phy2log, log2phy_of(phy2log, logcnt), logcnt


def _packing_np(w: np.ndarray, n_bins: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """balanced packing for all layers at once: w [L, n_items]."""
    L, n = w.shape
    order = np.argsort(-w, axis=1, kind="stable")
    load = np.zeros((L, n_bins))
    count = np.zeros((L, n_bins), dtype=np.int64)
    bin_of = np.zeros((L, n), dtype=np.int64)
    rank_of = np.zeros((L, n), dtype=np.int64)
    rows = np.arange(L)
    for k in range(n):
        item = order[:, k]
        cost = np.where(count < capacity, load, np.inf)
        b = np.argmin(cost, axis=1)
        bin_of[rows, item] = b
        rank_of[rows, item] = count[rows, b]
        count[rows, b] += 1
        load[rows, b] += w[rows, item]
    return bin_of, rank_of


def rebalance_numpy(weight, R: int, G: int, N: int, M: int):
    """The same policy vectorized across layers (loops only over items and replicas)."""
    w = np.asarray(weight, dtype=np.float64)
    L, E = w.shape
    if G % N:
        G, N = 1, 1
    epg, gpn, spn, epn, gpus, spg = E // G, G // N, R // N, E // N, M // N, R // M
    g_bin, g_rank = _packing_np(w.reshape(L, G, epg).sum(-1), N, gpn)
    # experts of each node in the order of their groups' ranks: [L, N, epn]
    pos = g_rank[:, :, None] * epg + np.arange(epg)                     # [L, G, epg]
    experts = np.zeros((L, N, epn), dtype=np.int64)
    li = np.repeat(np.arange(L), G * epg)
    experts[li, np.repeat(g_bin, epg, axis=1).ravel(), pos.reshape(L, -1).ravel()] = np.arange(E)[None].repeat(L, 0).ravel()
    nw = w[np.arange(L)[:, None, None], experts]                           # [L, N, epn]
    cnt = np.ones((L, N, epn), dtype=np.int64)
    phy = np.zeros((L, N, spn), dtype=np.int64)
    phy[:, :, :epn] = np.arange(epn)
    for r in range(epn, spn):
        best = np.argmax(nw / cnt, axis=2)                                  # [L, N]
        np.add.at(cnt, (np.arange(L)[:, None], np.arange(N)[None, :], best), 1)
        phy[:, :, r] = best
    phy_w = np.take_along_axis(nw, phy, 2) / np.take_along_axis(cnt, phy, 2)
    p_bin, p_rank = _packing_np(phy_w.reshape(L * N, spn), gpus, spg)
    slot = (np.arange(N)[None, :, None] * spn + p_bin.reshape(L, N, spn) * spg + p_rank.reshape(L, N, spn))
    phy2log = np.zeros((L, R), dtype=np.int64)
    np.put_along_axis(phy2log, slot.reshape(L, R), np.take_along_axis(experts, phy, 2).reshape(L, R), 1)
    logcnt = np.zeros((L, E), dtype=np.int64)
    np.put_along_axis(logcnt, experts.reshape(L, E), cnt.reshape(L, E), 1)
    return phy2log, log2phy_of(phy2log, logcnt), logcnt
