"""CartPole-v1: the built-in control task (:class:`~evokeras.tasks.control.GymControl`
on gymnasium's ``CartPole-v1``, registered as ``"cartpole"``).

The policy network maps the observation (4 numbers) to action logits (2); its weights
evolve with the architecture. Fitness is the mean return of real episodes, run at once in
gymnasium's vectorised CartPole (its vector entry point). "Solved" follows gymnasium: a
mean return >= 475 over 100 consecutive episodes on seeds the search never used; a
search stops once a front member is verified solved. See :mod:`evokeras.tasks.control`
for the seeds, the final test and the figures.
"""

from __future__ import annotations

from evokeras.genomes.space import SearchSpace
from evokeras.tasks.control import TEST_SEED_BASE, VERIFY_SEED_BASE, GymControl, rollout

__all__ = ["TEST_SEED_BASE", "VERIFY_SEED_BASE", "CartPole", "rollout"]


class CartPole(GymControl):
    """Balance the pole of gymnasium's ``CartPole-v1`` with an evolved policy network.

    Args:
        space: a search space to use instead of the control default (dense and
            activation genes with NumPy-evaluable activations, 0-4 layers).
        sigma: standard deviation of the Gaussian weight mutation.
        arch_rate: probability that a mutation also changes the architecture.
        normalize: scale observations (:class:`GymControl`); off by default here, as
            CartPole's observations need no scaling and its runs before 0.15 read them raw.
    """

    name = "cartpole"

    def __init__(self, *, space: SearchSpace | None = None, sigma: float = 0.2, arch_rate: float = 0.3,
                 normalize: bool = False) -> None:
        super().__init__("CartPole-v1", space=space, sigma=sigma, arch_rate=arch_rate, normalize=normalize)
