"""Encoders from features to pre-neuron spikes, deterministic per sample.

Randomness is counter-based (seed, sample index, step, row), so a sample's
spikes do not depend on the batch it is in or the order it is visited."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def _uniform(seed: int, ids: np.ndarray, steps: int, rows: int) -> np.ndarray:
    """Uniform [0,1) of shape (len(ids), steps, rows), a pure function of the coordinates."""
    out = np.empty((len(ids), steps, rows), dtype=np.float64)
    for k, i in enumerate(ids):
        out[k] = np.random.default_rng([seed, int(i), 0x5B]).random((steps, rows))
    return out


def _check(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ConfigError(f"{what} encoder: features must be (samples, rows), got {x.shape}")
    if np.any(~np.isfinite(x)):
        raise ConfigError(f"{what} encoder: features contain NaN or infinity")
    return np.clip(x, 0, 1)


def rate(x: np.ndarray, steps: int, *, seed: int, ids: np.ndarray, p_max: float = 0.5) -> np.ndarray:
    """Rate coding, deterministic: row r fires at a regular rate p_max * x_r
    (sigma-delta: a spike each time the accumulated rate crosses an integer),
    with a seeded random phase per sample and row so rows do not fire in
    lockstep. A row's spike count is p_max * x_r * steps within one spike,
    without the Bernoulli noise that would cost accuracy at short windows."""
    x = _check(x, "rate")
    phase = _uniform(seed, ids, 1, x.shape[1])[:, 0, :]
    acc = (np.arange(1, steps + 1)[None, :, None] * (x * p_max)[:, None, :]) + phase[:, None, :]
    prev = (np.arange(0, steps)[None, :, None] * (x * p_max)[:, None, :]) + phase[:, None, :]
    return (np.floor(acc) > np.floor(prev)).astype(np.uint8)


def poisson(x: np.ndarray, steps: int, *, seed: int, ids: np.ndarray, p_max: float = 0.5) -> np.ndarray:
    """Stochastic rate coding: row r spikes at each step with probability p_max * x_r."""
    x = _check(x, "poisson")
    u = _uniform(seed, ids, steps, x.shape[1])
    return (u < x[:, None, :] * p_max).astype(np.uint8)


def latency(x: np.ndarray, steps: int, **_) -> np.ndarray:
    """Latency coding: one spike per row, earlier for larger x (x in [0,1]); x = 0 stays silent."""
    x = np.clip(np.asarray(x, dtype=float), 0, 1)
    t = np.round((1.0 - x) * (steps - 1)).astype(int)
    out = np.zeros((x.shape[0], steps, x.shape[1]), dtype=np.uint8)
    n, r = np.nonzero(x > 0)
    out[n, t[n, r], r] = 1
    return out


def delta(series: list[np.ndarray], steps: int, rows: int, *, threshold: float) -> np.ndarray:
    """Delta (send-on-delta) coding of multichannel time series: channel c uses
    rows 2c (rise) and 2c+1 (fall); a spike each time the signal moves by
    `threshold` from its last reported level. Series are resampled to `steps`."""
    out = np.zeros((len(series), steps, rows), dtype=np.uint8)
    for k, s in enumerate(series):
        s = np.asarray(s, dtype=float)
        if s.ndim != 2:
            raise ConfigError(f"delta encoder: series {k} must be (time, channels), got {s.shape}")
        if 2 * s.shape[1] > rows:
            raise ConfigError(f"delta encoder: {s.shape[1]} channels need {2 * s.shape[1]} rows, array has {rows}")
        idx = np.linspace(0, len(s) - 1, steps)
        r = np.stack([np.interp(idx, np.arange(len(s)), s[:, c]) for c in range(s.shape[1])], axis=1)
        level = r[0].copy()
        for t in range(steps):
            up = r[t] - level >= threshold
            dn = level - r[t] >= threshold
            out[k, t, 0:2 * s.shape[1]:2] = up
            out[k, t, 1:2 * s.shape[1]:2] = dn
            level = np.where(up | dn, r[t], level)
    return out


def frames(x: np.ndarray, rows: int, *, seed: int, ids: np.ndarray, p_max: float = 0.5) -> np.ndarray:
    """Stream coding of feature frames over time (e.g. MFCC frames): the frame
    sequence (samples, time, features) is rate coded step by step, so the chip
    sees the utterance as it unfolds. Deterministic sigma-delta, as `rate` but
    with a rate that changes every step: row r spikes when p_max times its
    running sum of x crosses an integer (seeded phase per sample and row), so
    a row's spike count over any stretch of the stream equals p_max times its
    integral within one spike, with no Bernoulli noise."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 3 or x.shape[2] > rows:
        raise ConfigError(f"frame encoder: need (samples, time, <= {rows} features), got {x.shape}")
    phase = _uniform(seed, ids, 1, x.shape[2])[:, 0, :]
    acc = np.cumsum(np.clip(x, 0, 1) * p_max, axis=1) + phase[:, None, :]
    prev = np.concatenate([phase[:, None, :], acc[:, :-1]], axis=1)
    spikes = (np.floor(acc) > np.floor(prev)).astype(np.uint8)
    if x.shape[2] < rows:
        spikes = np.concatenate([spikes, np.zeros(spikes.shape[:2] + (rows - x.shape[2],), np.uint8)], axis=2)
    return spikes
