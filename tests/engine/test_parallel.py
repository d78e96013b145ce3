"""Tests for :mod:`evokeras.engine.parallel`: serial, process and Dask map backends.

The evaluations are the cheap analytic :class:`_fakes.FakeEvaluator` (no training),
except one real smoke check (marked slow). The Dask cluster tests start a real
``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, kill a worker and
then the scheduler mid-run, and check that the run store holds every evaluation once
and the front equals the serial run's.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import TESTS_DIR, FakeCrash, fake_for, small_config  # noqa: E402
from deap import algorithms, tools  # noqa: E402

from evokeras.engine.config import ConfigError, SearchConfig  # noqa: E402
from evokeras.engine.parallel import (  # noqa: E402
    BackendError,
    DaskBackend,
    ProcessBackend,
    SchedulerLost,
    SerialBackend,
    detect_gpus,
    failure_result,
    gpu_worker_env,
    hard_timeout,
    make_backend,
    worker_env,
)
from evokeras.engine.parallel.environment import keras_backend  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.engine.toolbox import make_toolbox  # noqa: E402
from evokeras.genomes.space import SearchSpace  # noqa: E402
from evokeras.tasks import make_task  # noqa: E402
from evokeras.training.protocol import EvaluateFunction, PlainEvaluate  # noqa: E402

CONFIG = {"population": 6, "offspring": 6, "generations": 2}


# -- picklable helpers (module level: workers import this module) ------------------------------------
def env_of(name: str) -> str | None:
    return os.environ.get(name)


def env_dict(names: list[str]) -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in names}


def pid_of(_: object) -> int:
    return os.getpid()


def deap_objectives(ind) -> tuple[float, float]:
    return (len(ind.layers) / 10.0, float(ind.training.learning_rate))


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def slow_echo(item):
    time.sleep(0.05)
    return item


class SlowPlain:
    """A plain callable (not an :class:`EvaluateFunction`, though it has ``objectives``)
    that sleeps ``seconds`` on the genomes whose key is in ``keys``."""

    def __init__(self, fake, keys, seconds: float) -> None:
        self.fake, self.keys, self.seconds = fake, set(keys), seconds
        self.objectives = fake.objectives

    def __call__(self, genome):
        if genome.key in self.keys:
            time.sleep(self.seconds)
        return self.fake(genome)


class Slow(SlowPlain, EvaluateFunction):
    """:class:`SlowPlain` as an :class:`EvaluateFunction` (a lost task gets a failure record)."""


class WarmMark(EvaluateFunction):
    """Writes a file named after the worker's pid when warmed up; returns the pid."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.objectives = {"val_error": -1.0}

    def warm_up(self) -> None:
        (self.directory / str(os.getpid())).write_text("warm")

    def __call__(self, _):
        return os.getpid()


class Paced:
    """A generator of ``n`` items that a backend with ``workers`` slots must pull lazily.

    Pulling item ``j`` asserts that fewer than ``workers`` items are in flight (pulled,
    their results not yet received); item ``j >= workers`` carries the result of item
    ``j - workers`` *received* before it, so it can only be made once that came back.
    The consumer appends every result to :attr:`received`.
    """

    def __init__(self, n: int, workers: int) -> None:
        self.n, self.workers = n, workers
        self.received: list = []
        self.max_in_flight = 0

    def __iter__(self):
        for j in range(self.n):
            in_flight = j - len(self.received)
            assert in_flight < self.workers, f"item {j} pulled with {in_flight} tasks in flight"
            self.max_in_flight = max(self.max_in_flight, in_flight + 1)
            yield (j, self.received[j - self.workers] if j >= self.workers else None)


def check_lazy_consumption(backend, workers: int, n: int = 8) -> None:
    paced = Paced(n, workers)
    for result in backend(slow_echo, iter(paced)):
        paced.received.append(result)
    assert sorted(j for j, _ in paced.received) == list(range(n))
    assert paced.max_in_flight == workers
    for j, dependency in paced.received:
        assert (dependency is None) == (j < workers)
        assert dependency is None or dependency in paced.received


class CrashOnce(EvaluateFunction):
    """A fake evaluator whose worker process dies (``os._exit``) the first time it sees ``key``."""

    def __init__(self, fake, key: str, marker: Path) -> None:
        self.fake, self.key, self.marker = fake, key, marker
        self.objectives = fake.objectives

    def __call__(self, genome):
        if genome.key == self.key and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            time.sleep(0.2)
            os._exit(7)
        return self.fake(genome)


def genomes(n: int, seed: int = 0) -> list:
    """``n`` random genomes of the small MNIST space (all valid there)."""
    cfg = small_config()
    task = make_task(cfg.task, space=cfg.search_space(make_task(cfg.task)))
    tb = make_toolbox(task, seed=seed)
    return [ind.as_genome() for ind in tb.population(n)]


def store_keys(run_dir: Path) -> list[str]:
    with RunStore(run_dir / "run.db", create=False) as store:
        return [r.key for _, r in store.evaluations()]


def front_keys(result) -> list[str]:
    return sorted(ind.key for ind in result.front)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    """The reference: the small search evaluated serially."""
    cfg = small_config(**CONFIG)
    search = Search(cfg, tmp_path_factory.mktemp("serial") / "run", evaluate=fake_for(cfg))
    result = search._run()
    search.close()
    return result, store_keys(search.out_dir)


@pytest.fixture(scope="module")
def procs():
    backend = ProcessBackend(2, gpus=0)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def local_dask():
    backend = DaskBackend(workers=2, threads_per_worker=1)
    yield backend
    backend.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, n_workers: int = 2) -> None:
        self.dask = str(Path(sys.executable).with_name("dask"))
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                    "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])}
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._start([self.dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard"])
        self.workers = [self._start([self.dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                                     "--no-dashboard", "--host", "127.0.0.1"]) for _ in range(n_workers)]

    def _start(self, cmd: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the process and its children (its session: a worker's nanny and worker)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(2)
    try:
        with DaskBackend(c.address, connect_timeout=60) as probe:
            probe.client.wait_for_workers(2, timeout=90)
        yield c
    finally:
        c.close()


class KillAfter:
    """A map function passing results through, calling ``action`` after ``n`` of them."""

    def __init__(self, backend, n: int, action) -> None:
        self.backend, self.n, self.action, self.seen = backend, n, action, 0

    def __call__(self, fn, items):
        for result in self.backend(fn, items):
            yield result
            self.seen += 1
            if self.seen == self.n:
                self.action()


# -- environment and configuration ------------------------------------------------------------------
def test_worker_env_sets_threads_and_backend() -> None:
    env = worker_env(2, backend="tensorflow")
    assert env["KERAS_BACKEND"] == "tensorflow"
    for key in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        assert env[key] == "2"
    assert "XLA_FLAGS" not in env  # TensorFlow's XLA may reject JAX's flags
    jax = worker_env(1, backend="jax", extra={"A": "b"})
    assert "--xla_cpu_multi_thread_eigen=false" in jax["XLA_FLAGS"] and "intra_op_parallelism_threads=1" in jax["XLA_FLAGS"]
    assert jax["A"] == "b"
    with pytest.raises(ValueError, match="threads"):
        worker_env(0)


def test_gpu_worker_env_pins_and_limits_memory() -> None:
    envs = [gpu_worker_env(i, 2, 2, "jax", devices=["0", "1"]) for i in range(4)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0", "1"]
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in envs)
    assert float(envs[0]["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.45)
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in envs[0]
    tf = gpu_worker_env(5, 3, 2, "tensorflow", devices=["2", "3"])
    assert tf == {"CUDA_VISIBLE_DEVICES": "3", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert gpu_worker_env(0, 2, 0, "jax") == {"CUDA_VISIBLE_DEVICES": ""}
    with pytest.raises(ValueError):
        gpu_worker_env(0, 0, 1, "jax")
    with pytest.raises(ValueError, match="GPUs"):
        gpu_worker_env(0, 1, 3, "jax", devices=["0"])


def test_gpu_placement_reaches_the_workers() -> None:
    """Two (pretend) GPUs, one worker each: every worker sees only its own device."""
    expected = [gpu_worker_env(i, 1, 2, keras_backend()) for i in range(2)]
    names = sorted(expected[0])
    with ProcessBackend(2, gpus=2, workers_per_gpu=1) as backend:
        assert backend.map(env_dict, [names, names]) == expected  # one task per worker, in slot order
    with DaskBackend(gpus=2, workers_per_gpu=1) as backend:
        assert backend.workers == 2
        seen = backend.client.run(env_dict, names)  # on every worker
        assert sorted(seen.values(), key=lambda e: e["CUDA_VISIBLE_DEVICES"]) == expected


def test_finish_exits_3_when_the_scheduler_is_lost(tmp_path, capsys) -> None:
    from evokeras.app.study import finish

    def lost(fn, genomes):
        raise SchedulerLost("lost the Dask scheduler tcp://127.0.0.1:1")
        yield  # a generator, like the real backends

    cfg = small_config()
    out = tmp_path / "run"
    assert finish(Search(cfg, out, evaluate=fake_for(cfg), map_fn=lost)) == 3
    err = capsys.readouterr().err
    assert "lost the Dask scheduler" in err and f"evokeras resume {out}" in err
    Search.resume(out, evaluate=fake_for(cfg)).close()  # the run directory was released


def test_detect_gpus_without_nvidia_smi(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert detect_gpus() == 0


def test_config_keys_and_make_backend() -> None:
    cfg = small_config()
    assert (cfg.parallel.workers, cfg.parallel.backend, cfg.parallel.scheduler) == (1, None, None)
    assert isinstance(make_backend(cfg), SerialBackend)
    proc = make_backend(small_config(workers=2))
    assert isinstance(proc, ProcessBackend) and proc.workers == 2
    assert proc.timeout == hard_timeout(cfg.budget().timeout)
    assert proc.recycle_after == cfg.parallel.recycle_after == 20
    assert make_backend(small_config(workers=2, recycle_after=None)).recycle_after is None
    dask = make_backend(small_config(workers=2, backend="dask"))
    assert isinstance(dask, DaskBackend) and dask.address is None and dask.workers == 2
    remote = make_backend(small_config(scheduler="tcp://127.0.0.1:1"))
    assert isinstance(remote, DaskBackend) and remote.address == "tcp://127.0.0.1:1"
    for bad, key in [({"workers": 0}, "workers"), ({"workers": "2"}, "workers"), ({"backend": "mpi"}, "backend"),
                     ({"backend": "serial", "workers": 2}, "backend"), ({"scheduler": "127.0.0.1:1"}, "scheduler"),
                     ({"scheduler": "tcp://h:1", "backend": "process"}, "scheduler"),
                     ({"recycle_after": 0}, "recycle_after")]:
        with pytest.raises(ConfigError, match=key):
            small_config(**bad)
    assert SearchConfig.from_dict(small_config(workers=3).to_dict()).parallel.workers == 3


def test_study_flags_override_config(tmp_path, monkeypatch, capsys) -> None:
    """``--workers/--backend/--scheduler`` reach the configuration the Search is built with."""
    import evokeras.app.study as study

    seen = []

    def fake_search(config, out, **kwargs):
        seen.append(config)
        raise study.RunError("stop here")

    monkeypatch.setattr(study, "Search", fake_search)
    budgets = {"smoke": {"task": "mnist", "population": 4, "offspring": 4, "generations": 1}}
    out = ["--out", str(tmp_path / "r")]
    assert study.run_study("t", budgets, [*out, "--workers", "2"]) == 2
    assert (seen[-1].parallel.workers, seen[-1].parallel.backend, seen[-1].parallel.scheduler) == (2, None, None)
    assert study.run_study("t", budgets, [*out, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert (seen[-1].parallel.backend, seen[-1].parallel.scheduler) == ("dask", "tcp://127.0.0.1:9")
    assert study.run_study("t", budgets, [*out, "--backend", "dask", "--workers", "3"]) == 2
    assert (seen[-1].parallel.backend, seen[-1].parallel.workers) == ("dask", 3)
    config_file = tmp_path / "c.json"
    config_file.write_text('{"scheduler": "tcp://127.0.0.1:9"}')
    assert study.run_study("t", budgets, [*out, "--config", str(config_file), "--backend", "process"]) == 2
    assert (seen[-1].parallel.backend, seen[-1].parallel.scheduler) == ("process", None)
    assert len(seen) == 4
    capsys.readouterr()
    assert study.run_study("t", budgets, [*out, "--backend", "serial", "--workers", "2"]) == 2
    assert len(seen) == 4 and "config key 'parallel.backend'" in capsys.readouterr().err


# -- serial and process backends ---------------------------------------------------------------------
def test_serial_backend() -> None:
    cfg = small_config()
    fake = fake_for(cfg)
    gs = genomes(5)
    with SerialBackend() as backend:
        assert [r.key for r in backend(fake, gs)] == [g.key for g in gs]
        assert backend.map(pow, [2, 3], [3, 2]) == [8, 9]


def test_serial_backend_pulls_lazily() -> None:
    check_lazy_consumption(SerialBackend(), 1)


def test_a_lost_task_gets_a_failure_record_only_from_an_evaluate_function() -> None:
    """The engine/evaluator seam: ``isinstance(fn, EvaluateFunction)``, no attribute probing."""
    cfg = small_config()
    fake = fake_for(cfg)
    (g,) = genomes(1)
    plain = SlowPlain(fake, [], 0)  # has ``objectives``, but is no EvaluateFunction
    with pytest.raises(BackendError, match="lost"):
        failure_result(plain, g, "timeout", "lost")
    record = failure_result(PlainEvaluate(plain, cfg.objectives), g, "timeout", "lost")
    assert (record.key, record.status, record.error) == (g.key, "timeout", "lost")
    assert record.objective_names == tuple(cfg.objectives) and record.objectives == (1e9, 1e9)
    assert failure_result(Slow(fake, [], 0), g, "failed", "x").status == "failed"
    assert PlainEvaluate(plain, cfg.objectives)(g) == fake(g)
    with pytest.raises(TypeError):
        EvaluateFunction()  # abstract: __call__


def test_process_backend_returns_every_result_once(procs) -> None:
    cfg = small_config()
    fake = fake_for(cfg, delay=0.05)
    gs = genomes(12)
    results = list(procs(fake, gs))
    assert sorted(r.key for r in results) == sorted(g.key for g in gs)
    assert all(r.ok for r in results)
    direct = {g.key: fake(g).objectives for g in gs}
    assert {r.key: r.objectives for r in results} == direct
    assert [r.key for r in procs.map(fake, gs)] == [g.key for g in gs]  # map keeps the order
    assert procs.map(pow, [2, 3, 4], [2, 2, 2]) == [4, 9, 16]


def test_process_workers_get_their_environment(procs) -> None:
    values = procs.map(env_of, ["OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES"])
    threads = str(procs.threads_per_worker)
    assert values[:2] == [threads, threads]
    assert values[2] == keras_backend()
    assert values[3] == os.environ.get("CUDA_VISIBLE_DEVICES")  # gpus=0: left alone


def test_process_backend_errors_propagate(procs) -> None:
    with pytest.raises(ValueError, match="three is not allowed"):
        procs.map(fail_on_three, range(6))
    assert procs.map(fail_on_three, [1, 2]) == [1, 4]  # still usable


def test_process_backend_pulls_lazily(procs) -> None:
    check_lazy_consumption(procs, 2)
    assert procs.map(slow_echo, (x for x in range(3))) == [0, 1, 2]  # map: a list, in order


def test_a_spare_warms_up_an_evaluate_function(tmp_path) -> None:
    """The spare worker calls ``warm_up()`` of an :class:`EvaluateFunction` (the worker
    given the first task gets the function with it, unwarmed)."""
    with ProcessBackend(1, gpus=0, recycle_after=1) as backend:
        (first,) = backend.map(WarmMark(tmp_path), [0])
        spare = backend._spares[0]
        deadline = time.monotonic() + 120
        while not (tmp_path / str(spare.proc.pid)).exists():
            assert time.monotonic() < deadline, "the spare never warmed up"
            time.sleep(0.1)
        assert not (tmp_path / str(first)).exists()


def test_process_workers_are_recycled_after_n_tasks() -> None:
    """``recycle_after``: a worker answers at most N tasks, then a fresh process takes its slot."""
    with ProcessBackend(1, gpus=0, recycle_after=2) as backend:
        pids = backend.map(pid_of, range(5)) + backend.map(pid_of, range(1))
    assert len(pids) == 6 and os.getpid() not in pids
    counts = sorted(pids.count(p) for p in set(pids))
    assert counts == [2, 2, 2]  # tasks 0-1, 2-3, 4-5: the count carries over between maps
    with pytest.raises(ValueError, match="recycle_after"):
        ProcessBackend(1, gpus=0, recycle_after=0)


def test_a_recycled_workers_successor_starts_during_its_last_task() -> None:
    """The replacement process is started when a worker gets its last task, so the next
    task finds it started (and the first worker's start-up is not repeated on the critical path)."""
    with ProcessBackend(1, gpus=0, recycle_after=2) as backend:
        first = backend.map(pid_of, range(2))
        assert backend._pool[0] is None  # retired
        spare = backend._spares[0]
        assert spare.proc.is_alive() and spare.proc.pid not in first
        (second,) = backend.map(pid_of, range(1))
        assert second == spare.proc.pid and not backend._spares
    assert not spare.proc.is_alive()  # close() stops it


def test_a_spare_that_died_is_replaced_and_close_kills_a_starting_one() -> None:
    with ProcessBackend(1, gpus=0, recycle_after=1) as backend:
        (first,) = backend.map(pid_of, range(1))
        spare = backend._spares[0]
        spare.proc.kill()
        spare.proc.join(10)
        (second,) = backend.map(pid_of, range(1))  # a fresh worker, not the dead spare
        assert second not in (first, spare.proc.pid)
        starting = backend._spares[0]
    assert not starting.proc.is_alive() and not backend._spares


def test_process_worker_crash_reruns_the_task(tmp_path) -> None:
    cfg = small_config()
    fake = fake_for(cfg)
    gs = genomes(6)
    marker = tmp_path / "crashed"
    with ProcessBackend(2, gpus=0) as backend:
        results = list(backend(CrashOnce(fake, gs[2].key, marker), gs))
    assert marker.exists()  # the worker did die
    assert sorted(r.key for r in results) == sorted(g.key for g in gs)
    assert all(r.ok for r in results)


def test_process_hung_evaluation_hits_the_time_limit() -> None:
    cfg = small_config()
    fake = fake_for(cfg)
    gs = genomes(4)
    start = time.monotonic()
    with ProcessBackend(2, gpus=0, timeout=10.0) as backend:
        results = {r.key: r for r in backend(Slow(fake, [gs[1].key], 120), gs)}
        assert time.monotonic() - start < 60
        assert results[gs[1].key].status == "timeout" and "hard limit" in results[gs[1].key].error
        assert all(results[g.key].ok for g in gs if g.key != gs[1].key)
        with pytest.raises(BackendError, match="hard limit"):
            backend.map(Slow(fake, [gs[0].key], 120), gs[:1])


def test_deap_ea_mu_plus_lambda_uses_the_backend(procs) -> None:
    def run(map_fn):
        tb = make_toolbox("mnist", seed=3, evaluate=deap_objectives)
        calls = []
        if map_fn is not None:
            tb.register("map", lambda f, *it: calls.append(1) or map_fn(f, *it))
        random.seed(3)
        pop = tb.population(8)
        hof = tools.ParetoFront()
        pop, log = algorithms.eaMuPlusLambda(pop, tb, 8, 8, 0.5, 0.4, 2, halloffame=hof, verbose=False)
        return sorted((i.key, i.fitness.values) for i in pop), sorted(i.key for i in hof), len(calls)

    pop_p, hof_p, calls = run(procs.map)
    pop_s, hof_s, _ = run(None)
    assert calls == 3  # the initial population and two generations
    assert (pop_p, hof_p) == (pop_s, hof_s)


def test_search_with_workers_matches_serial_and_resumes(serial_run, tmp_path) -> None:
    """``workers: 2`` in the config: a process backend, the same front; a crash of the
    search process mid-generation and a resume complete it with each key once."""
    ref, ref_keys = serial_run
    cfg = small_config(**CONFIG, workers=2)
    search = Search(cfg, tmp_path / "run", evaluate=fake_for(cfg, delay=0.05))
    assert isinstance(search.map_fn, ProcessBackend) and search.toolbox.map.func == search.map_fn.map
    commit = search.store.add_evaluation

    def crash_after_eight(result, gen, _n=[0]):  # noqa: B006 - a counter
        _n[0] += 1
        if _n[0] > 8:
            raise FakeCrash("simulated crash of the search process")
        commit(result, gen)

    search.store.add_evaluation = crash_after_eight
    with pytest.raises(FakeCrash):
        search._run()
    assert all(w is None for w in search.map_fn._pool)  # closed by run()
    search.close()
    assert len(store_keys(tmp_path / "run")) == 8

    resumed = Search.resume(tmp_path / "run", evaluate=fake_for(cfg))
    assert isinstance(resumed.map_fn, ProcessBackend)
    result = resumed._run()
    resumed.close()
    keys = store_keys(tmp_path / "run")
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(ref_keys)
    assert front_keys(result) == front_keys(ref)


# -- Dask ----------------------------------------------------------------------------------------------
def test_dask_local_cluster_returns_every_result_once(local_dask) -> None:
    cfg = small_config()
    fake = fake_for(cfg, delay=0.05)
    gs = genomes(10)
    results = list(local_dask(fake, gs))
    assert sorted(r.key for r in results) == sorted(g.key for g in gs)
    times = local_dask.task_times  # submitted, received, started, finished
    assert len(times) == len(gs) and all(s <= a <= b <= r + 0.1 for s, r, a, b in times)
    assert [r.key for r in local_dask.map(fake, gs)] == [g.key for g in gs]
    assert local_dask.map(env_of, ["TF_NUM_INTRAOP_THREADS", "KERAS_BACKEND"])[0] == "1"


def test_dask_backend_pulls_lazily(local_dask) -> None:
    check_lazy_consumption(local_dask, 2)
    assert len(local_dask.task_times) == 8


def test_dask_hung_evaluation_hits_the_time_limit() -> None:
    cfg = small_config()
    fake = fake_for(cfg)
    gs = genomes(3)
    with DaskBackend(workers=1, threads_per_worker=1, timeout=3.0) as backend:
        plain = PlainEvaluate(SlowPlain(fake, [gs[0].key], 120), cfg.objectives)
        results = {r.key: r for r in backend(plain, gs)}
    assert results[gs[0].key].status == "timeout"
    assert all(results[g.key].ok for g in gs[1:])


def test_dask_cluster_workers_get_the_environment(cluster) -> None:
    with DaskBackend(cluster.address, env={"EVOKERAS_TEST_MARK": "yes"}) as backend:
        assert backend.map(env_of, ["EVOKERAS_TEST_MARK"] * 4) == ["yes"] * 4


def test_dask_cluster_worker_killed_mid_run(cluster, serial_run, tmp_path) -> None:
    ref, ref_keys = serial_run
    cfg = small_config(**CONFIG)
    with DaskBackend(cluster.address) as backend:
        killer = KillAfter(backend, 4, lambda: Cluster.kill(cluster.workers[0]))
        search = Search(cfg, tmp_path / "run", evaluate=fake_for(cfg, delay=0.3), map_fn=killer)
        result = search._run()
        search.close()
        assert killer.seen == len(ref_keys) and cluster.workers[0].poll() is not None
        assert len(backend.client.scheduler_info()["workers"]) == 1
    keys = store_keys(tmp_path / "run")
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(ref_keys)
    assert front_keys(result) == front_keys(ref)


def test_dask_scheduler_lost_then_resume(cluster, serial_run, tmp_path) -> None:
    ref, ref_keys = serial_run
    cfg = small_config(**CONFIG)
    with DaskBackend(cluster.address) as backend:
        killer = KillAfter(backend, 3, lambda: Cluster.kill(cluster.scheduler))
        search = Search(cfg, tmp_path / "run", evaluate=fake_for(cfg, delay=0.3), map_fn=killer)
        with pytest.raises(SchedulerLost, match="scheduler"):
            search._run()
        search.close()
    done = store_keys(tmp_path / "run")
    assert 3 <= len(done) < len(ref_keys)
    resumed = Search.resume(tmp_path / "run", evaluate=fake_for(cfg), map_fn=SerialBackend())
    result = resumed._run()
    resumed.close()
    keys = store_keys(tmp_path / "run")
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(ref_keys)
    assert front_keys(result) == front_keys(ref)
    with pytest.raises(SchedulerLost, match="cannot reach"):
        DaskBackend(cluster.address, connect_timeout=2).client  # noqa: B018


def test_a_refused_scheduler_address_fails_soon() -> None:
    """Nothing listening at the address: one error after REFUSED_SECONDS, not after connect_timeout."""
    import socket
    import time

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SchedulerLost, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: nothing listens"):
        DaskBackend(f"tcp://127.0.0.1:{port}", connect_timeout=60).client  # noqa: B018
    assert time.monotonic() - start < 40


# -- one real evaluation -------------------------------------------------------------------------------
@pytest.mark.slow
def test_process_backend_real_evaluator() -> None:
    from evokeras.genomes.network import Genome, LayerGene
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget

    ev = Evaluator(make_task("mnist", space=SearchSpace()), Budget(epochs=1, train_samples=256, val_samples=128, patience=0, time_repeats=1),
                   {"val_error": -1.0, "flops": -1.0})
    gs = [Genome((LayerGene("dense", units=16),)), Genome((LayerGene("dense", units=32),))]
    with ProcessBackend(2, gpus=0) as backend:
        results = list(backend(ev, gs))
    assert sorted(r.key for r in results) == sorted(g.key for g in gs)
    assert all(r.ok for r in results), [r.error for r in results]


@pytest.mark.slow
def test_recycled_workers_with_warmed_up_spares_give_the_serial_results() -> None:
    """A real evaluator in workers replaced after every task: each successor is started
    and warmed up (Keras imported, data loaded) during its predecessor's task, freezes
    after its first task, and the validation errors equal those of in-process evaluation."""
    import numpy as np

    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget
    from evokeras.variation.network import random_genome

    cfg = small_config()
    task = cfg.build_task()
    ev = Evaluator(task, Budget(epochs=1, train_samples=300, val_samples=200, patience=0, time_repeats=1),
                   {"val_error": -1.0, "flops": -1.0}, seed=0)
    rng = np.random.default_rng(0)
    genomes = [random_genome(rng, task.space) for _ in range(3)]
    with ProcessBackend(1, gpus=0, recycle_after=1) as backend:
        results = backend.map(ev, genomes)
    assert [r.status for r in results] == ["ok"] * 3
    assert [r.objectives for r in results] == [ev(g).objectives for g in genomes]
