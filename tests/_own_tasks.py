"""Task factories for the tests of importable ``module:factory`` tasks (``tests/`` is on
``sys.path`` in the tests and their subprocesses)."""

from __future__ import annotations

from evokeras.tasks.control import GymControl


class WrongInput(GymControl):
    """MountainCar-v0 with a policy input of 4 numbers instead of its 2 observations: the
    bug of a hand-written subclass that fixes the sizes of another environment; every
    candidate fails with the same shape error."""

    input_shape = (4,)

    def __init__(self, **options: object) -> None:
        super().__init__("MountainCar-v0", **options)  # type: ignore[arg-type]
        self.input_shape = (4,)
        self.space = self._bind(self.space)


def wrong_input(**options: object) -> WrongInput:
    return WrongInput(**options)


def mountain_car(**options: object) -> GymControl:
    return GymControl("MountainCar-v0", **options)  # type: ignore[arg-type]
