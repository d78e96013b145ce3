"""The evolution-strategy arithmetic (:mod:`evokeras.variation.es`): shaping, the antithetic
gradient, Adam's JSON state, novelty; and the flat weight vector of evolved weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene
from evokeras.variation import es as E
from evokeras.variation import weights as W


def test_centered_ranks_are_shaped_and_ties_share() -> None:
    r = E.centered_ranks(np.array([10.0, -3.0, 1e9, 10.0, np.nan]))
    assert r.min() == -0.5 and r.max() == 0.5
    assert r[2] == 0.5 and r[4] == -0.5  # an outlier counts as one rank; NaN is the worst
    assert r[0] == r[3]  # equal returns: the same rank, no direction between them
    assert np.all(E.centered_ranks(np.full(6, 3.0)) == 0.0)
    assert E.centered_ranks(np.array([1.0])).tolist() == [0.0]


def test_lexicographic_ranks_break_ties_by_the_second_key() -> None:
    r = E.lexicographic_ranks(np.array([0.0, 0.0, 0.0, 5.0]), np.array([3.0, 1.0, 2.0, 0.0]))
    assert np.argsort(r).tolist() == [1, 2, 0, 3]
    tied = E.lexicographic_ranks(np.array([1.0, 1.0, -np.inf, -np.inf]), np.zeros(4))
    assert tied[0] == tied[1] > tied[2] == tied[3]  # equal on both keys: no direction between them
    eps = np.ones((2, 3))
    assert np.all(E.gradient(eps, tied[0::2], tied[1::2], 0.1) == 0.0)


def test_the_antithetic_gradient_points_uphill() -> None:
    rng = np.random.default_rng(0)
    slope = rng.normal(size=20)
    eps = E.antithetic(rng, 200, 20)
    plus, minus = (np.array([slope @ (s * 0.1 * e) for e in eps]) for s in (1.0, -1.0))
    g = E.gradient(eps, plus, minus, 0.1)  # unbiased: about the slope itself
    assert abs(np.linalg.norm(g) / np.linalg.norm(slope) - 1) < 0.3
    assert g @ slope / (np.linalg.norm(g) * np.linalg.norm(slope)) > 0.9
    shaped = E.centered_ranks(np.concatenate([plus, minus]))  # shaping keeps the direction
    g2 = E.gradient(eps, shaped[:200], shaped[200:], 0.1)
    assert g2 @ slope / (np.linalg.norm(g2) * np.linalg.norm(slope)) > 0.9


def test_adam_state_round_trips_through_json_and_continues_the_same() -> None:
    a = E.Adam(4, learning_rate=0.1)
    theta = np.zeros(4)
    for _ in range(3):
        theta = a.ascend(theta, np.array([1.0, -1.0, 0.5, 0.0]))
    b = E.Adam.from_state(json.loads(json.dumps(a.state())))
    g = np.array([0.3, 0.2, -0.1, 1.0])
    np.testing.assert_array_equal(a.ascend(theta, g), b.ascend(theta, g))
    with pytest.raises(ValueError, match="m has"):
        E.Adam.from_state({**a.state(), "v": [0.0]})


def test_novelty_is_the_mean_distance_to_the_nearest() -> None:
    archive = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    n = E.novelty(np.array([[0.0, 0.0], [5.0, 0.0]]), archive, k=2)
    np.testing.assert_allclose(n, [0.5, 4.5])
    assert E.novelty(np.zeros((2, 2)), np.zeros((0, 2))).tolist() == [0.0, 0.0]


def test_flat_weights_round_trip_in_layout_order() -> None:
    g = W.init_weights(Genome((LayerGene("dense", units=3, activation="tanh"),)), np.random.default_rng(0), 4, 2)
    v = W.flat_weights(g, 4, 2)
    assert v.shape == (4 * 3 + 3 + 3 * 2 + 2,)
    back = W.with_flat_weights(g, v, 4, 2)
    assert back.key == g.key
    moved = W.with_flat_weights(g, v + 1.0, 4, 2)
    np.testing.assert_allclose(W.flat_weights(moved, 4, 2), v + 1.0, rtol=1e-6)
    with pytest.raises(GenomeError, match="needs 23"):
        W.with_flat_weights(g, v[:-1], 4, 2)
