"""Where workers run and with what: cores, GPUs, a worker's environment, time limits.

Shared by the process and Dask backends: :func:`cpu_count`, :func:`detect_gpus`,
:func:`worker_env` (Keras backend and thread counts, set before Keras is imported in a
worker), :func:`gpu_worker_env` (a worker pinned to one GPU), :func:`hard_timeout` (the
backend's wall limit around an evaluation's own limit) and the pool's shape; and what
the process itself needs: :func:`require_keras_backend` (the Keras backend is
installed, checked before a search makes its run directory) and :func:`quiet_loggers`
(a library's INFO lines kept off stderr unless logging asks for them).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from evokeras._meta import MissingExtraError, optional_dependency

__all__ = ["cpu_count", "detect_gpus", "gpu_worker_env", "hard_timeout", "quiet_loggers", "require_keras_backend",
           "worker_env"]

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_shape(
    name: str, gpus: int, workers_per_gpu: int, workers: int | None, threads: int | None, timeout: float | None
) -> tuple[int, int]:
    """Checked ``(workers, threads per worker)``: by default a worker per core (or
    ``workers_per_gpu`` per GPU), and threads so that workers x threads = cores."""
    if workers is None:
        workers = gpus * workers_per_gpu if gpus else cpu_count()
    if workers < 1:
        raise ValueError(f"{name}: workers must be >= 1, got {workers}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"{name}: timeout must be > 0, got {timeout}")
    return int(workers), int(threads or max(1, cpu_count() // int(workers)))


def keras_backend() -> str | None:
    """The Keras backend of this process, if it is known without importing Keras: that of
    the Keras imported here, else ``KERAS_BACKEND``, else Keras's ``keras.json``."""
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return str(keras.backend.backend())
        except Exception:  # a half-imported keras: fall back to the environment
            pass
    return os.environ.get("KERAS_BACKEND") or _keras_json_backend()


def _keras_json_backend() -> str | None:
    """The ``backend`` of Keras's configuration file (``$KERAS_HOME/keras.json``, else
    ``~/.keras/keras.json``, as Keras finds it), if there is one."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        backend = json.loads((Path(home) / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend else None


#: The module that each Keras backend needs (``None``: nothing beyond Keras).
_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "openvino": "openvino", "numpy": None}


def require_keras_backend() -> None:
    """Raise :class:`evokeras.MissingExtraError`, naming the extra to install, when the
    Keras backend this process would use (:func:`keras_backend`; Keras's default,
    TensorFlow) is not installed. Looked up without importing it: a search checks it
    before it makes its run directory."""
    module = _BACKEND_MODULES.get(keras_backend() or "tensorflow")
    if module is None or module in sys.modules:
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        try:
            with optional_dependency():
                raise ModuleNotFoundError(f"No module named {module!r}", name=module)
        except MissingExtraError as exc:
            raise exc.with_traceback(None) from None  # one message, naming the extra


def apply_env(env: Mapping[str, str]) -> None:
    """Set ``env`` in this (worker) process, warning when Keras already runs another backend."""
    os.environ.update(env)
    # A spawned worker re-imports the parent's main module first (a study script imports
    # Keras): harmless when that Keras runs the backend the worker was meant to get.
    keras = sys.modules.get("keras")
    if keras is not None and "KERAS_BACKEND" in env and keras.backend.backend() != env["KERAS_BACKEND"]:
        log.warning("worker %d: keras was imported with backend %s before its environment (%s) was set",
                    os.getpid(), keras.backend.backend(), env["KERAS_BACKEND"])


def worker_env(threads: int, *, backend: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a worker that may use ``threads`` CPU threads.

    Set before Keras (and TensorFlow/JAX) is imported in the worker: ``KERAS_BACKEND``
    (this process's backend unless ``backend`` is given), ``OMP_NUM_THREADS`` and
    friends, ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``, and for JAX the
    ``XLA_FLAGS`` that limit its CPU thread pool. ``extra`` is added last.

    >>> worker_env(1, backend="jax")["XLA_FLAGS"]
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    backend = backend or keras_backend()
    n = str(int(threads))
    env = {
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
    }
    if backend:
        env["KERAS_BACKEND"] = backend
    if backend == "jax":
        # Only for JAX: TensorFlow's own XLA may not know these flags (unknown flags are fatal).
        flags = "--xla_cpu_multi_thread_eigen=false " if threads == 1 else ""
        flags += f"intra_op_parallelism_threads={n}"
        previous = os.environ.get("XLA_FLAGS", "").strip()
        env["XLA_FLAGS"] = f"{previous} {flags}".strip()
    env.update(extra or {})
    return env


def detect_gpus() -> int:
    """Number of NVIDIA GPUs this process may use (``nvidia-smi -L``; 0 without one).

    ``CUDA_VISIBLE_DEVICES``, when set, limits the count.
    """
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    n = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    visible = _visible_devices()
    return n if visible is None else min(n, len(visible))


def _visible_devices() -> list[str] | None:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]


def gpu_worker_env(
    worker_index: int,
    workers_per_gpu: int,
    n_gpus: int,
    backend: str | None = None,
    *,
    devices: Sequence[str] | None = None,
) -> dict[str, str]:
    """Environment that pins worker ``worker_index`` to one GPU, shared by ``workers_per_gpu``.

    Workers go round-robin over the GPUs (worker ``i`` on GPU ``i % n_gpus``); every
    worker sees only its GPU (``CUDA_VISIBLE_DEVICES``). Memory: TensorFlow grows its
    allocation as needed (``TF_FORCE_GPU_ALLOW_GROWTH``); JAX neither preallocates nor
    takes more than ``0.9 / workers_per_gpu`` of the GPU. Without GPUs (``n_gpus == 0``)
    the worker sees none.

    Args:
        worker_index: the worker's index (0, 1, ...).
        workers_per_gpu: workers sharing one GPU.
        n_gpus: GPUs to spread over.
        backend: Keras backend (``tensorflow``/``jax``; default this process's).
        devices: the device ids to use (default ``CUDA_VISIBLE_DEVICES`` or 0..n_gpus-1).

    >>> gpu_worker_env(3, 2, 2, "jax")["CUDA_VISIBLE_DEVICES"]
    '1'
    """
    if worker_index < 0 or workers_per_gpu < 1 or n_gpus < 0:
        raise ValueError(
            f"gpu_worker_env: need worker_index >= 0, workers_per_gpu >= 1, n_gpus >= 0; "
            f"got {worker_index}, {workers_per_gpu}, {n_gpus}"
        )
    if n_gpus == 0:
        return {"CUDA_VISIBLE_DEVICES": ""}
    ids = list(devices) if devices is not None else (_visible_devices() or [str(i) for i in range(n_gpus)])
    if len(ids) < n_gpus:
        raise ValueError(f"gpu_worker_env: {n_gpus} GPUs asked for, only devices {ids} available")
    backend = backend or keras_backend() or "tensorflow"
    env = {"CUDA_VISIBLE_DEVICES": ids[worker_index % n_gpus]}
    if backend == "tensorflow":
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    elif backend == "jax":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / workers_per_gpu:.3f}"
    return env


def hard_timeout(seconds: float) -> float:
    """The backend's hard wall limit for an evaluation whose own (soft) limit is ``seconds``.

    The evaluator stops training itself at its limit; the backend only kills workers
    that hang beyond it (with room for a fresh worker's Keras import and data loading).
    """
    return float(seconds) + max(60.0, 0.25 * float(seconds))


def quiet_loggers(*names: str, level: int = logging.WARNING) -> Callable[[], None]:
    """Keep a library's INFO lines (Dask's ``distributed``, ``optuna``) off stderr while
    evokeras uses it: each named logger that lets INFO through gets ``level``, unless
    logging asks for INFO -- the root logger at INFO or below (``evokeras -v``, the
    user's ``logging.basicConfig(level=logging.INFO)``) or a level below INFO that the
    user gave the logger itself. Returns the function that gives each logger changed its
    level back (unless someone changed it since)."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return lambda: None
    changed: dict[logging.Logger, int] = {}
    for name in names:
        logger = logging.getLogger(name)
        if logging.NOTSET < logger.level < logging.INFO or logger.getEffectiveLevel() >= level:
            continue  # the user's DEBUG, or quiet already
        changed[logger] = logger.level
        logger.setLevel(level)

    def restore() -> None:
        for logger, old in changed.items():
            if logger.level == level:
                logger.setLevel(old)
        changed.clear()

    return restore
