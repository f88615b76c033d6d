"""A run directory is a transaction: one writer at a time, final files committed together, leftovers cleaned."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
from runs_helpers import commit_tiny, run_python, tiny_model, tiny_spec

from neuroxai.errors import RunBusyError, RunError, RunSettingsError
from neuroxai.runs import ResumeState, RunDirectory

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and /proc are POSIX")

HOLD_LOCK = """
import sys, time
from neuroxai.runs import RunDirectory
RunDirectory(sys.argv[1]).acquire()
print("LOCKED", flush=True)
time.sleep(120)
"""


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@posix_only
@pytest.mark.slow
def test_a_second_writer_fails_fast_and_a_dead_writers_lock_is_taken_over(tmp_path):
    run = RunDirectory(tmp_path / "run")
    holder = run_python(HOLD_LOCK, str(run.path), wait=False)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(RunBusyError, match=rf"pid {holder.pid} .*delete .*\.neuroxai\.lock"):
            run.acquire()
        with pytest.raises(RunBusyError, match="being written by another process"):
            run.check()
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(run.lock_file.read_text())["pid"] == holder.pid  # the killed writer's lock is still there
    with run.locked():  # ... but its process is gone: taken over
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()
    assert not run.lock_file.exists()


def test_a_lock_naming_a_dead_process_or_a_reused_pid_is_stale(tmp_path):
    import socket

    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    for pid in (_dead_pid(), os.getpid()):  # our own pid, but not held by us: left by an earlier process
        run.lock_file.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "token": "x"}))
        run.acquire()
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()
        run.release()
        assert not run.lock_file.exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    run = RunDirectory(tmp_path / "run")
    with run.locked(), RunDirectory(tmp_path / "run").locked():
        assert run.lock_file.exists()
    assert not run.lock_file.exists()


def test_a_finished_run_is_not_trained_again_unless_overwrite(tmp_path):
    commit_tiny(tmp_path / "run", 16)
    run = RunDirectory(tmp_path / "run")
    assert run.is_finished()
    with pytest.raises(RunError, match="already holds a finished run.*--overwrite"):
        run.check()
    with pytest.raises(RunError, match="already holds a finished run"), run.writing():
        pass
    with run.writing(overwrite=True):
        assert run.resume_state({"a": 1}) is None  # overwrite starts afresh ...
        assert run.is_finished()  # ... and the earlier run stays readable until the new one commits


def test_an_interrupted_run_resumes_only_with_the_same_settings(tmp_path):
    run = RunDirectory(tmp_path / "run")
    fingerprint = {"model": "tiny", "plan": [["single", 4, 0.001]], "seed": 1}
    run.save_state(ResumeState(fingerprint=fingerprint, phase="single", epoch=2), tiny_model(16), with_optimizer=False)
    assert not run.is_finished() and run.is_run()
    with run.writing():
        assert run.resume_state(json.loads(json.dumps(fingerprint))).epoch == 2
        with pytest.raises(RunSettingsError, match=r"other settings \(seed: 1 there, 2 now\).*--overwrite"):
            run.resume_state({**fingerprint, "seed": 2})


@pytest.mark.parametrize("content", ['{"fingerprint": {"model": "cnn"}, "pha', "", "[1, 2]", '{"version": 2, "phase": 3}'])
def test_a_damaged_resume_state_is_a_clear_error(tmp_path, content):
    run = RunDirectory(tmp_path / "run")
    run.backup_dir.mkdir(parents=True)
    run.state_file.write_text(content)
    with (
        pytest.raises(RunError, match=r"state\.json.*(damaged|not a JSON object).*Delete .*backup.*--overwrite"),
        run.writing(),
    ):
        run.resume_state({"model": "cnn"})


def test_temporary_files_of_a_killed_writer_are_removed_on_the_next_start(tmp_path):
    commit_tiny(tmp_path / "run", 16)
    run = RunDirectory(tmp_path / "run")
    leftovers = [run.path / ".model.k3j_x9a2.tmp.keras", run.path / "checkpoints" / ".best.abcdefgh.tmp.keras"]
    for f in leftovers:
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"")
    keep = run.path / ".notes"
    keep.write_text("mine")
    (run.staging_dir).mkdir()
    (run.staging_dir / "model.keras").write_bytes(b"half")  # a commit killed before its commit point
    with run.writing(overwrite=True):
        pass
    assert not any(f.exists() for f in leftovers) and not run.staging_dir.exists() and keep.exists()


KILL_DURING_COMMIT = """
import os, signal, sys
from pathlib import Path
import neuroxai.runs._run as R
from runs_helpers import commit_tiny

where = sys.argv[2]
if where == "before":  # killed while flushing the staged files: the commit point is not reached
    def flush(paths):
        os.kill(os.getpid(), signal.SIGKILL)
    R._fsync_files = flush
else:  # killed after the first final file was moved into place
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        if Path(src).parent.name == ".staging" and not Path(src).name.startswith("."):
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
commit_tiny(sys.argv[1], 24)
"""


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_reader_never_sees_a_mixed_run_after_a_kill_during_the_commit(tmp_path, where):
    import neuroxai

    out = tmp_path / "run"
    commit_tiny(out, 16)  # the earlier run: 16 px
    proc = run_python(KILL_DURING_COMMIT, str(out), where)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run = RunDirectory(out)
    assert run.staging_dir.exists() and run.lock_file.exists()  # the killed commit left its traces
    predictor = neuroxai.load(out)
    size = 16 if where == "before" else 24  # before the commit point: the earlier run; after it: the new one, whole
    assert predictor.input_shape == (size, size, 1)
    assert tuple(predictor.model.input_shape[1:]) == (size, size, 1)
    if where == "after":  # the reader completed the commit
        assert not run.staging_dir.exists() and not run.lock_file.exists()


def test_load_refuses_a_spec_that_disagrees_with_its_model(tmp_path):
    import neuroxai
    from neuroxai.errors import ModelError

    out = tmp_path / "run"
    commit_tiny(out, 16)
    spec = json.loads((out / "neuroxai.json").read_text())
    (out / "neuroxai.json").write_text(json.dumps({**spec, "input_shape": [32, 32, 1]}))
    with pytest.raises(ModelError, match=r"neuroxai\.json says input_shape \[32, 32, 1\] but the model .* takes \[16, 16, 1\]"):
        neuroxai.load(out)


def test_commit_replaces_metrics_of_an_earlier_commit_that_had_them(tmp_path):
    out = tmp_path / "run"
    commit_tiny(out, 16)
    (out / "metrics.json").write_text("{}")  # as if the earlier commit had an evaluation
    RunDirectory(out).commit(tiny_model(16), tiny_spec(16), {"epoch": [1]}, None)
    assert not (out / "metrics.json").exists() and (out / "model.keras").is_file()
