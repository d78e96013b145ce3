"""Reliability benchmark: a tiny MNIST study tried as a hostile or unlucky user would.

Every case runs the real command line (``studies/mnist.py``, ``python -m evokeras``) in a
subprocess. Groups:

* ``bad_input`` -- malformed command lines and configuration files (NaN, a negative
  seed, not UTF-8, nested 100,000 deep, 2 MiB, unknown keys, wrong types,
  ``EVOKERAS_BROWN`` pointing nowhere, an unreachable ``--scheduler``): expected status
  2, one ``error:`` line, no traceback, no run directory;
* ``tampered_run_dir`` -- a copy of a finished run with one file or row made hostile
  (checkpoint and evaluation rows, ``hall_of_fame.json``, ``run.db`` replaced by random
  bytes, ``config.json`` naming a scheduler): ``resume``/``report``/``plot`` exit 2 with
  one line (the scheduler case: 0, and nothing connects to it) and change nothing;
* ``signals`` -- SIGINT or SIGTERM at a seeded random moment (a second SIGINT 50 ms
  after the first in some cases), then ``resume``: expected 130 / 143 with the resume
  hint, then the reference's front;
* ``kill9`` -- ``kill -9`` at a seeded random moment, then ``resume``;
* ``full_disk`` -- the run directory on a small tmpfs (skipped where mounting is not
  allowed): expected status 4 naming the file, then ``resume`` after the disk grows.

``as_expected`` counts cases whose status and message were right; ``lost`` counts
resumable cases whose resumed hall of fame differs from the uninterrupted reference
(keys and search objectives) or whose ``run.db`` fails ``PRAGMA integrity_check``.

Usage::

    python benchmarks/reliability.py                 # -> benchmarks/results/reliability.json
    python benchmarks/reliability.py --quick --results-dir /tmp/rel   # one case per group
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common

ROOT = Path(__file__).resolve().parents[1]
STUDY = [sys.executable, str(ROOT / "studies" / "mnist.py"), "--no-progress"]
EVOKERAS = [sys.executable, "-m", "evokeras"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
       "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
TINY = {"strategy": {"population": 3, "offspring": 3, "generations": 2},
        "evaluation": {"train_samples": 300, "val_samples": 200, "seconds": 600, "timeout": 1200},  # no time limits: load-independent
        "final": {"train_samples": 300}}


def run(args: list[str], timeout: float = 400, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("error:", "stopped"))]


def one_line_exit_2(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == 2 and len(error_lines(proc.stderr)) == 1 and "Traceback" not in proc.stderr


def front(out: Path) -> dict[str, Any]:
    return {m["key"]: m["objectives"] for m in json.loads((out / "hall_of_fame.json").read_text())["members"]}


def sound(out: Path) -> bool:
    db = sqlite3.connect(out / "run.db")
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def snapshot(out: Path) -> dict[str, Any]:
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and p.name not in ("run.db", "run.db-wal", "run.db-shm", ".lock")}
    db = sqlite3.connect(out / "run.db")
    try:
        files["run.db"] = list(db.iterdump())
    except sqlite3.DatabaseError:
        files["run.db"] = (out / "run.db").read_bytes()
    finally:
        db.close()
    return files


def wait_for_run(out: Path, proc: subprocess.Popen) -> None:
    """Until the study has made its run directory (a signal during its imports is
    Python's default handling: nothing is written yet)."""
    deadline = time.monotonic() + 300
    while not (out / "config.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def start_study(out: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen([*STUDY, "--config", str(config), "--out", str(out)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- groups --------------------------------------------------------------------------------------


def bad_input(tmp: Path, quick: bool) -> list[dict[str, Any]]:
    def config(name: str, content: bytes) -> list[str]:
        path = tmp / f"{name}.json"
        path.write_bytes(content)
        return ["--config", str(path)]

    cases: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("seed_negative", ["--seed", "-1"], None),
        ("wall_seconds_nan", config("nan", b'{"wall_seconds": NaN}'), None),
        ("timeout_infinite", config("inf", b'{"evaluation": {"timeout": Infinity}}'), None),
        ("not_utf8", config("latin1", b'{"study": "caf\xe9"}'), None),
        ("nested_100000", config("deep", b'{"task_options": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"), None),
        ("two_mib", config("huge", b'{"study": "' + b"x" * 2**21 + b'"}'), None),
        ("unknown_key", config("unknown", b'{"populaton": 4}'), None),
        ("wrong_type", config("type", b'{"population": "4"}'), None),
        ("not_an_object", config("list", b"[1, 2]"), None),
        ("missing_file", ["--config", str(tmp / "absent.json")], None),
        ("unreachable_scheduler", ["--scheduler", "tcp://127.0.0.1:9"], None),
    ]
    out = []
    for name, args, env in cases[:2] if quick else cases:
        target = tmp / f"run-{name}"
        proc = run([*STUDY, *args, "--out", str(target)], env=env)
        out.append({"case": name, "status": proc.returncode, "message": error_lines(proc.stderr)[-1:],
                    "as_expected": one_line_exit_2(proc) and not target.exists()})
    if not quick:  # a data set named by the environment, missing
        target = tmp / "run-brown"
        proc = run([sys.executable, str(ROOT / "studies" / "word_lm.py"), "--no-progress", "--out", str(target)],
                   env={**ENV, "EVOKERAS_BROWN": str(tmp / "nowhere")})
        out.append({"case": "brown_env_nowhere", "status": proc.returncode, "message": error_lines(proc.stderr)[-1:],
                    "as_expected": one_line_exit_2(proc) and not target.exists()
                    and "EVOKERAS_BROWN" in proc.stderr})
    return out


def _sql(out: Path, sql: str, *args: Any) -> None:
    db = sqlite3.connect(out / "run.db")
    with db:
        db.execute(sql, args)
    db.close()


def tampered_run_dir(tmp: Path, reference: Path, quick: bool) -> list[dict[str, Any]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    calls: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            calls.append(peer)
            conn.close()

    def scheduler_in_config(out: Path) -> None:
        stored = json.loads((out / "config.json").read_text())
        stored["config"].setdefault("parallel", {}).update(backend="dask",
                                                           scheduler=f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        (out / "config.json").write_text(json.dumps(stored))

    def random_db(out: Path) -> None:
        for name in ("run.db-wal", "run.db-shm"):
            (out / name).unlink(missing_ok=True)
        (out / "run.db").write_bytes(random.Random(0).randbytes(64 * 1024))

    tamper = {
        "checkpoint_garbage": lambda out: _sql(out, "UPDATE checkpoints SET state = '{\"gen\": 2}'"),
        "checkpoint_genome": lambda out: _sql(out, "UPDATE checkpoints SET state = json_set(state, "
                                                   "'$.population[0].genome.layers[0].kind', json('[1]'))"),
        "checkpoint_not_json": lambda out: _sql(out, "UPDATE checkpoints SET state = 'x'"),
        "evaluation_objectives": lambda out: _sql(out, "UPDATE evaluations SET objectives = '\"a\"'"),
        "evaluation_metrics": lambda out: _sql(out, "UPDATE evaluations SET metrics = '[1]'"),
        "evaluation_status": lambda out: _sql(out, "UPDATE evaluations SET status = 'fine'"),
        "hall_of_fame_list": lambda out: (out / "hall_of_fame.json").write_text("[]"),
        "hall_of_fame_member": lambda out: (out / "hall_of_fame.json").write_text(
            '{"objectives": {"val_error": -1}, "members": [{"key": 3}]}'),
        "hall_of_fame_nan": lambda out: (out / "hall_of_fame.json").write_text(
            '{"objectives": {"val_error": NaN}, "members": []}'),
        "run_db_random_bytes": random_db,
        "config_json_scheduler": scheduler_in_config,
    }
    commands = {"checkpoint": ["resume"], "evaluation": ["resume"], "hall_of_fame": ["report", "plot"],
                "run_db": ["report", "plot", "resume"], "config_json": ["resume"]}
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    out_cases = []
    try:
        items = list(tamper.items())
        for name, fn in items[:2] if quick else items:
            group = next(g for g in commands if name.startswith(g))
            for command in commands[group]:
                out = tmp / f"{name}-{command}"
                shutil.copytree(reference, out)
                fn(out)
                before = snapshot(out) if name != "run_db_random_bytes" else (out / "run.db").read_bytes()
                proc = run([*EVOKERAS, command, str(out), *(["--no-progress"] if command == "resume" else [])])
                after = snapshot(out) if name != "run_db_random_bytes" else (out / "run.db").read_bytes()
                if name == "config_json_scheduler":  # a finished run: resume reports it, connecting nowhere
                    ok = proc.returncode == 0 and not calls
                else:
                    ok = one_line_exit_2(proc)
                out_cases.append({"case": f"{name}/{command}", "status": proc.returncode,
                                  "message": error_lines(proc.stderr)[-1:],
                                  "as_expected": ok and before == after, "unchanged": before == after})
    finally:
        stop.set()
        thread.join()
        listener.close()
    return out_cases


def interrupted(tmp: Path, config: Path, reference: dict[str, Any], name: str, stop: Any) -> dict[str, Any]:
    """Start the study, ``stop(proc)`` it, resume; the case's record."""
    out = tmp / name
    proc = start_study(out, config)
    wait_for_run(out, proc)
    expected = stop(proc)
    _, err = proc.communicate(timeout=400)
    case: dict[str, Any] = {"case": name, "status": proc.returncode, "message": error_lines(err)[-1:]}
    if proc.returncode == 0:
        case.update(as_expected=True, note="finished before it was stopped", lost=front(out) != reference)
        return case
    hint = f"continue with: evokeras resume {out}"
    case["as_expected"] = proc.returncode == expected and "Traceback" not in err and (
        expected == -signal.SIGKILL or any(hint in ln for ln in error_lines(err)))
    done = run([*EVOKERAS, "resume", str(out), "--no-progress"])
    case["resume_status"] = done.returncode
    case["lost"] = done.returncode != 0 or not sound(out) or front(out) != reference
    return case


def signals(tmp: Path, config: Path, reference: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    rng = random.Random(20)
    plans = [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGINT, False),
             (signal.SIGTERM, False), (signal.SIGINT, True)]
    cases = []
    for i, (signum, twice) in enumerate(plans[:1] if quick else plans):
        delay = rng.uniform(0.0, 25.0)  # after the run directory exists; the run takes ~25 s

        def stop(proc: subprocess.Popen, signum: int = signum, twice: bool = twice, delay: float = delay) -> int:
            time.sleep(delay)
            proc.send_signal(signum)
            if twice:
                time.sleep(0.05)
                proc.send_signal(signum)
            return 128 + signum

        case = interrupted(tmp, config, reference, f"{signal.Signals(signum).name}{'x2' if twice else ''}-{i}", stop)
        cases.append({**case, "delay_s": round(delay, 2)})
    return cases


def kill9(tmp: Path, config: Path, reference: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    rng = random.Random(9)
    cases = []
    for i in range(1 if quick else 3):
        delay = rng.uniform(0.0, 25.0)

        def stop(proc: subprocess.Popen, delay: float = delay) -> int:
            time.sleep(delay)
            proc.kill()
            return -signal.SIGKILL

        cases.append({**interrupted(tmp, config, reference, f"kill9-{i}", stop), "delay_s": round(delay, 2)})
    return cases


def full_disk(tmp: Path, config: Path, reference: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    cases = []
    for size in ["160k"] if quick else ["160k", "320k", "400k"]:
        mnt = tmp / f"disk-{size}"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True).returncode:
            return [{"case": "full_disk", "skipped": "cannot mount a tmpfs here"}]
        try:
            out = mnt / "run"
            proc = run([*STUDY, "--config", str(config), "--out", str(out)])
            lines = error_lines(proc.stderr)
            case: dict[str, Any] = {"case": f"tmpfs-{size}", "status": proc.returncode, "message": lines[-1:]}
            case["as_expected"] = (proc.returncode == 4 and len(lines) == 1 and "Traceback" not in proc.stderr
                                   and str(out) in lines[0] and f"evokeras resume {out}" in lines[0])
            subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
            done = run([*EVOKERAS, "resume", str(out), "--no-progress"])
            case["resume_status"] = done.returncode
            case["lost"] = done.returncode != 0 or not sound(out) or front(out) != reference
            cases.append(case)
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    return cases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one or two cases per group (a check of the script)")
    p.add_argument("--results-dir", type=Path, default=None, help="where reliability.json goes")
    args = p.parse_args()
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="evokeras-reliability-") as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "tiny.json"
        config.write_text(json.dumps(TINY))
        ref_dir = tmp / "reference"
        proc = run([*STUDY, "--config", str(config), "--out", str(ref_dir)])
        if proc.returncode != 0:
            raise SystemExit(f"the reference run failed:\n{proc.stderr[-3000:]}")
        reference = front(ref_dir)
        groups = {
            "bad_input": bad_input(tmp, args.quick),
            "tampered_run_dir": tampered_run_dir(tmp, ref_dir, args.quick),
            "signals": signals(tmp, config, reference, args.quick),
            "kill9": kill9(tmp, config, reference, args.quick),
            "full_disk": full_disk(tmp, config, reference, args.quick),
        }
    summary = {name: {"tried": sum("skipped" not in c for c in cases),
                      "as_expected": sum(bool(c.get("as_expected")) for c in cases),
                      "lost": sum(bool(c.get("lost")) for c in cases)} for name, cases in groups.items()}
    result = {
        "what": "a tiny MNIST study (3 + 3 x 2 candidates, 300 training images) under hostile input, "
                "signals, kill -9 and full disks; lost = a resumed front differing from the reference "
                "or a run.db failing integrity_check",
        "study_config": TINY,
        "summary": summary,
        "total": {k: sum(s[k] for s in summary.values()) for k in ("tried", "as_expected", "lost")},
        "reference_front": reference,
        "cases": groups,
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "machine": _common.machine_info(),
    }
    path = _common.write_result("reliability", result)
    print(json.dumps({"summary": summary, "total": result["total"], "seconds": result["seconds"]}, indent=2))
    print(path)


if __name__ == "__main__":
    main()
