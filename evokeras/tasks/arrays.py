"""Classification (and regression) of your own arrays: images of any size and channel
count, vectors, sequences; any number of classes (registered as ``"arrays"``; regression
of numeric targets as ``"arrays_regression"``, :class:`ArrayRegression`).

Build it from arrays in memory or from a dataset of batches (a ``keras.utils.PyDataset``,
a ``tf.data.Dataset``: :meth:`ArrayClassification.from_arrays`, or
:func:`evokeras.from_arrays`) or from an ``.npz`` file holding ``x_train``, ``y_train``
and optionally ``x_val``, ``y_val``, ``x_test``, ``y_test``
(``make_task("arrays", path="data.npz")``; a configuration's ``task_options``). Without
validation or test arrays a seeded random part of the training data stands in
(:func:`evokeras.data.files.array_split`: ``val_fraction``, ``test_fraction``,
``split_seed``). Inputs become ``float32``, ``uint8`` divided by 255; grey images
``(N, H, W)`` get a channel axis. The search space is the default of the input's family
(``image`` for ``(N, H, W[, C])``, ``vector`` for ``(N, D)``; ``family="sequence"`` for
``(N, T[, F])``).

A run directory rebuilds the task from its configuration: the file's path and sha256
(arrays from memory are first written to ``DIR/data.npz``); a file that changed since is
refused (:class:`evokeras.data.DataChangedError`). The run directory records a file
inside it relative to itself (:func:`task_options_to_record`), so that a moved run
directory keeps its data (:func:`recorded_task_options` reads it back); a file elsewhere
is recorded absolute.

Example:
    >>> import numpy as np
    >>> from evokeras.tasks.arrays import ArrayClassification
    >>> x, y = np.zeros((70, 12, 20, 3), np.uint8), np.arange(70) % 7
    >>> task = ArrayClassification.from_arrays(x, y)
    >>> task.input_shape, task.n_outputs, task.family
    ((12, 20, 3), 7, 'image')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evokeras import data as datasets
from evokeras.data.base import take
from evokeras.data.files import (
    array_split,
    check_sha256,
    dataset_arrays,
    infer_family,
    load_npz,
    save_npz,
)
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Classification, SupervisedTask
from evokeras.tasks.image import half_chance_error, reference_genomes

__all__ = ["DATA_FILE_TASKS", "ArrayClassification", "ArrayRegression", "recorded_task_options",
           "task_options_to_record"]

#: The registered tasks whose recipe records a data file (task option ``path``), relative
#: to the run directory where it lies in it (``DIR/data.npz``, ``DIR/data.txt``).
DATA_FILE_TASKS = ("arrays", "arrays_regression", "text")


def task_options_to_record(task: str, options: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """``options`` as the run directory ``run_dir`` records them (``config.json``): the
    data file of a :data:`DATA_FILE_TASKS` task relative to ``run_dir`` where it lies in
    it (the directory can move), else as it is (absolute)."""
    path = options.get("path")
    if task not in DATA_FILE_TASKS or not isinstance(path, str) or not Path(path).is_absolute():
        return options
    try:
        return {**options, "path": Path(path).relative_to(Path(run_dir).resolve()).as_posix()}
    except ValueError:
        return options


def recorded_task_options(task: str, options: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """The ``task_options`` a run directory recorded (``config.json``), with the data
    file of a :data:`DATA_FILE_TASKS` task found again: a relative path is relative to
    ``run_dir``; an absolute one (recorded up to 0.13) that no longer exists, in a run
    directory since moved, is the run directory's own file of that name when it has one
    (its sha256 is checked when the task is built)."""
    path = options.get("path")
    if task not in DATA_FILE_TASKS or not isinstance(path, str) or not path:
        return options
    run_dir = Path(run_dir)
    recorded = Path(path)
    if not recorded.is_absolute():
        found = run_dir / recorded
    elif not recorded.exists() and (run_dir / recorded.name).is_file():
        found = run_dir / recorded.name
    else:
        return options
    return {**options, "path": str(found.resolve())}


class _ArrayData:
    """The data part of the tasks of arrays: the arrays (a file or memory), their split,
    the recipe that rebuilds them, :meth:`data` with prefixes."""

    #: The registered name that :meth:`recipe` gives.
    task_name = "arrays"
    regression = False
    path: Path | None
    sha256: str | None
    name: str
    family: str
    input_shape: tuple[int, ...]
    n_outputs: int

    def _setup(self, path: str | Path | None, sha256: str | None, arrays: dict[str, Any] | None,
               family: str | None, n_classes: int | None, val_fraction: float, test_fraction: float,
               split_seed: int, name: str | None) -> None:
        if (path is None) == (arrays is None):
            raise ValueError(f"{self.task_name} task: give either path (an .npz file) or arrays, not "
                             + ("both" if path is not None else "neither"))
        if path is not None and not isinstance(path, str | Path):
            raise ValueError(f"path: expected a file path, got {path!r}")
        self.path = None if path is None else Path(path).expanduser().resolve()
        self.sha256 = None if self.path is None else check_sha256(self.path, sha256)
        raw = dict(arrays) if arrays is not None else load_npz(self.path)  # type: ignore[arg-type]
        self.options: dict[str, Any] = {
            "family": family or infer_family(raw.get("x_train", np.empty(0))), "val_fraction": val_fraction,
            "test_fraction": test_fraction, "split_seed": split_seed}
        self._split, k = array_split(raw, family=self.options["family"], n_classes=n_classes,
                                     val_fraction=val_fraction, test_fraction=test_fraction, seed=split_seed,
                                     regression=self.regression)
        self._raw = raw if self.path is None else None  # written to the run directory by recipe()
        self.name = name or (self.path.stem if self.path is not None else self.task_name)
        self.family = self.options["family"]
        self.input_shape = tuple(int(d) for d in self._split.x_train.shape[1:])
        self.n_outputs = k

    @classmethod
    def from_arrays(cls, x: Any, y: Any = None, *, validation_data: Any = None, test_data: Any = None,
                    **options: Any) -> Any:
        """The task of inputs ``x`` and targets ``y`` (plus validation and test data, else
        seeded parts of ``x``); ``options`` as the constructor's.

        As in Keras's ``fit``, ``x`` may instead be a dataset of ``(x, y)`` batches (``y``
        omitted): a ``keras.utils.PyDataset``, a batched ``tf.data.Dataset`` or any
        iterable of batches; so may ``validation_data`` and ``test_data`` be, else
        ``(x, y)`` pairs. Datasets are read once into memory
        (:func:`evokeras.data.files.dataset_arrays`)."""
        parts = {"train": x if y is None else (x, y), "val": validation_data, "test": test_data}
        arrays = {}
        for part, given in parts.items():
            if given is None:
                continue
            if isinstance(given, tuple) and len(given) == 2:
                arrays[f"x_{part}"], arrays[f"y_{part}"] = given
            else:
                label = {"train": "x", "val": "validation_data", "test": "test_data"}[part]
                arrays[f"x_{part}"], arrays[f"y_{part}"] = dataset_arrays(label, given)
        return cls(arrays=arrays, **options)

    def recipe(self, out_dir: Any) -> dict[str, Any] | None:
        """The registered task on the file (arrays in memory: written to ``DIR/data.npz``)
        with its sha256 and split options; ``None`` for a subclass (another task)."""
        if type(self) not in (ArrayClassification, ArrayRegression):
            return None
        if self.path is None:  # from now on the task is the file's
            self.path = Path(out_dir).resolve() / "data.npz"
            self.sha256 = save_npz(self.path, self._raw or {})
            self._raw = None
        options = {"path": str(self.path), "sha256": self.sha256, **self.options, "name": self.name}
        if not self.regression:
            options["n_classes"] = self.n_outputs
        return {"task": self.task_name, "task_options": options}

    def data(self, *, train_size: int | None = None, val_limit: int | None = None,
             test_limit: int | None = None) -> datasets.Split:
        """The split; ``train_size``, ``val_limit``, ``test_limit`` take prefixes."""
        s = self._split
        n_train = take("train_size", len(s.y_train), train_size)
        n_val = take("val_limit", len(s.y_val), val_limit)
        n_test = take("test_limit", len(s.y_test), test_limit)
        return datasets.Split(s.x_train[:n_train], s.y_train[:n_train], s.x_val[:n_val], s.y_val[:n_val],
                              s.x_test[:n_test], s.y_test[:n_test])


class ArrayClassification(_ArrayData, Classification):
    """Classify the inputs of an ``.npz`` file or of arrays in memory (softmax head,
    sparse cross-entropy, accuracy).

    Args:
        path: an ``.npz`` file of the arrays (keys in :data:`evokeras.data.files.ARRAY_KEYS`).
        sha256: the file's expected digest (a run directory's record; a different file is
            refused with :class:`~evokeras.data.DataChangedError`).
        arrays: the arrays in memory instead of ``path`` (same keys).
        family: ``"image"``, ``"sequence"`` or ``"vector"`` (default: from the input shape).
        n_classes: number of classes (default: the largest label + 1).
        val_fraction, test_fraction: the parts of the training data that validate and test
            when no validation or test arrays are given (seeded by ``split_seed``).
        name: a label for plots and reports (default: the file's stem, or ``"arrays"``).
        space: a search space instead of the family default.
    """

    fast_trainable = True

    def __init__(self, path: str | Path | None = None, *, sha256: str | None = None,
                 arrays: dict[str, Any] | None = None, family: str | None = None, n_classes: int | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 name: str | None = None, space: SearchSpace | None = None) -> None:
        self._setup(path, sha256, arrays, family, n_classes, val_fraction, test_fraction, split_seed, name)
        Classification.__init__(self, space=space)

    @property
    def default_max_val_error(self) -> float | None:
        """Half the error of guessing, as for the built-in image tasks."""
        return half_chance_error(self.n_outputs)

    def reference_genomes(self) -> list[Genome]:
        """Images: the image tasks' hand-designed networks (:func:`evokeras.tasks.image.reference_genomes`)."""
        return reference_genomes(self.space) if self.family == "image" else []


class ArrayRegression(_ArrayData, SupervisedTask):
    """Predict the numeric targets ``y`` (shape ``(N,)`` or ``(N, k)``) of an ``.npz`` file
    or of arrays in memory (registered as ``"arrays_regression"``): a linear head of ``k``
    outputs, mean squared error; figures ``val_loss`` (MSE) and ``val_mae``; test figures
    ``test_loss``, ``test_mae``. Arguments as :class:`ArrayClassification` (no ``n_classes``).
    """

    task_name = "arrays_regression"
    regression = True
    measures = ("val_loss", "val_mae", "exec_time", "params", "flops")
    default_objectives = {"val_loss": -1.0, "exec_time": -1.0}
    objective_directions = {"val_loss": -1.0, "val_mae": -1.0}

    def __init__(self, path: str | Path | None = None, *, sha256: str | None = None,
                 arrays: dict[str, Any] | None = None, family: str | None = None,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 name: str | None = None, space: SearchSpace | None = None) -> None:
        self._setup(path, sha256, arrays, family, None, val_fraction, test_fraction, split_seed, name)
        SupervisedTask.__init__(self, space=space)

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, name="head")(x)

    def loss(self) -> Any:
        return "mse"

    def metrics(self) -> list[Any]:
        return ["mae"]

    def val_metrics(self, scores: dict[str, float]) -> dict[str, float]:
        """``val_loss`` (mean squared error) and ``val_mae``."""
        return {"val_loss": float(scores["loss"]), "val_mae": float(scores.get("mae", float("nan")))}
