"""Evolution-strategy arithmetic on flat weight vectors: antithetic sampling, rank-based
fitness shaping, Adam, novelty.

The pieces of OpenAI-ES (Salimans, Ho, Chen, Sidor and Sutskever, "Evolution Strategies
as a Scalable Alternative to Reinforcement Learning", 2017), in plain NumPy, usable on
any weight vector -- the control tasks' evolved weights
(:func:`evokeras.variation.weights.flat_weights`) or your own DEAP individuals:

* :func:`antithetic` -- ``pairs`` Gaussian directions; the candidates are
  ``theta + sigma * eps`` and ``theta - sigma * eps`` (mirrored sampling halves the
  variance of the gradient estimate);
* :func:`centered_ranks` -- fitness shaping: ranks scaled to ``[-0.5, 0.5]``, so an
  outlier return cannot dominate a step and any monotone change of the returns gives the
  same step; :func:`lexicographic_ranks` breaks ties by a second key (novelty);
* :func:`gradient` -- the search-gradient estimate from the shaped fitness of the pairs;
* :class:`Adam` -- the optimiser of the mean, its state JSON-able;
* :func:`novelty` -- Lehman and Stanley's novelty: the mean distance of a behaviour to its
  ``k`` nearest neighbours in an archive (what a tie-breaker reads when every return is
  the same).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> theta, sigma, adam = np.zeros(3), 0.1, Adam(3, learning_rate=0.05)
    >>> for _ in range(200):  # maximise -|theta - 1|^2
    ...     eps = antithetic(rng, 8, 3)
    ...     f = lambda x: -np.sum((x - 1.0) ** 2)
    ...     plus = np.array([f(theta + sigma * e) for e in eps])
    ...     minus = np.array([f(theta - sigma * e) for e in eps])
    ...     ranks = centered_ranks(np.concatenate([plus, minus]))
    ...     theta = adam.ascend(theta, gradient(eps, ranks[:8], ranks[8:], sigma))
    >>> bool(np.all(np.abs(theta - 1.0) < 0.1))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Adam", "antithetic", "centered_ranks", "gradient", "lexicographic_ranks", "novelty"]


def antithetic(rng: np.random.Generator, pairs: int, dim: int) -> np.ndarray:
    """``pairs`` standard Gaussian directions of size ``dim`` (each used as ``+eps`` and ``-eps``)."""
    return rng.standard_normal((int(pairs), int(dim)))


def _ranks_of(order: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.arange(len(order), dtype=np.float64)
    return ranks


def _scaled(ranks: np.ndarray) -> np.ndarray:
    return ranks / (len(ranks) - 1) - 0.5 if len(ranks) > 1 else np.zeros(len(ranks))


def _shared(ranks: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """``ranks`` with the entries equal on every key sharing their mean rank."""
    groups: dict[tuple[float, ...], list[int]] = {}
    for i, row in enumerate(zip(*keys, strict=True)):
        groups.setdefault(tuple(row), []).append(i)
    for members in groups.values():
        ranks[members] = ranks[members].mean()
    return ranks


def _finite(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64).ravel(), nan=-np.inf)


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """The ranks of ``values`` (ascending; equal values share their mean rank: they give no
    direction) scaled to ``[-0.5, 0.5]``; non-finite values rank lowest. One value: ``[0.0]``."""
    v = _finite(values)
    return _scaled(_shared(_ranks_of(np.argsort(v, kind="stable")), v))


def lexicographic_ranks(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Centred ranks by ``primary``, ties broken by ``secondary`` (both ascending = better);
    entries equal on both share their mean rank."""
    p, s = _finite(primary), _finite(secondary)
    return _scaled(_shared(_ranks_of(np.lexsort((s, p))), p, s))


def gradient(eps: np.ndarray, plus: np.ndarray, minus: np.ndarray, sigma: float) -> np.ndarray:
    """The search gradient of the mean: ``sum_i (plus_i - minus_i) eps_i / (2 n sigma)``,
    ``plus``/``minus`` the shaped fitness of ``theta +/- sigma * eps_i`` (larger is better)."""
    eps = np.asarray(eps, dtype=np.float64)
    diff = np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)
    return (diff @ eps) / (2.0 * len(eps) * float(sigma)) if len(eps) else np.zeros(eps.shape[-1])


class Adam:
    """Adam (Kingma and Ba 2015) ascending a gradient; :meth:`state`/:meth:`from_state` as JSON.

    Args:
        dim: the size of the vector it moves.
        learning_rate: the step size.
        weight_decay: L2 pull of the vector toward zero, added to each step (Salimans et
            al. use 0.005: it keeps weights, and so the noise's relative size, in range).
    """

    def __init__(self, dim: int, *, learning_rate: float = 0.03, weight_decay: float = 0.005,
                 beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.m, self.v, self.t = np.zeros(int(dim)), np.zeros(int(dim)), 0

    def ascend(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """``theta`` one step up ``grad`` (minus the weight decay)."""
        g = np.asarray(grad, dtype=np.float64) - self.weight_decay * theta
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        step = self.learning_rate * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        return np.asarray(theta, dtype=np.float64) + step * self.m / (np.sqrt(self.v) + 1e-8)

    def state(self) -> dict[str, Any]:
        """Everything it needs to continue, as JSON."""
        return {"learning_rate": self.learning_rate, "weight_decay": self.weight_decay, "beta1": self.beta1,
                "beta2": self.beta2, "m": self.m.tolist(), "v": self.v.tolist(), "t": self.t}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Adam:
        """Invert :meth:`state`."""
        m = np.asarray(state["m"], dtype=np.float64)
        adam = cls(len(m), learning_rate=state["learning_rate"], weight_decay=state["weight_decay"],
                   beta1=state["beta1"], beta2=state["beta2"])
        adam.m, adam.v, adam.t = m, np.asarray(state["v"], dtype=np.float64), int(state["t"])
        if adam.v.shape != m.shape:
            raise ValueError(f"Adam state: m has {m.size} values, v {adam.v.size}")
        return adam


def novelty(behaviours: np.ndarray, archive: np.ndarray, k: int = 10) -> np.ndarray:
    """The novelty of each row of ``behaviours``: its mean Euclidean distance to its ``k``
    nearest rows of ``archive`` (zero distances to itself excluded by the caller's choice of
    archive). An empty archive: zeros."""
    b = np.asarray(behaviours, dtype=np.float64).reshape(len(behaviours), -1)
    a = np.asarray(archive, dtype=np.float64).reshape(len(archive), -1) if len(archive) else np.zeros((0, b.shape[1]))
    if not len(a) or not len(b):
        return np.zeros(len(b))
    d = np.sqrt(((b[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    k = max(1, min(int(k), len(a)))
    return np.sort(d, axis=1)[:, :k].mean(axis=1)
