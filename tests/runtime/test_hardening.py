"""Smaller hardening: refused checkpoints, read-only study commands, the Ray token,
and pool workers that die with their parent."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpc_seg.cli import main
from hpc_seg.errors import InputError
from hpc_seg.runtime.checkpoint import load_weights


class _Evil:
    """Unpickling this would run code (touch a file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_with_code_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    marker, evil = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"model": _Evil(marker)}, evil)
    with pytest.raises(InputError, match="not a plain weights file") as info:
        load_weights(evil)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
    # the same through the commands that take a user's file
    from hpc_seg.cardiac.train.model_file import load_model
    from hpc_seg.hadnet.models.io import load_model_file
    for load in (load_model, load_model_file):
        with pytest.raises(InputError, match="it will not be loaded"):
            load(evil)
    assert main(["export", "nifti", str(tmp_path), "x", str(tmp_path / "x.nii")]) == 2  # smoke
    capsys.readouterr()
    (tmp_path / "slices").mkdir()
    assert main(["train", str(tmp_path / "slices"), str(tmp_path / "run"), "--preset", "debug",
                 "--init-checkpoint", str(evil)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert not marker.exists()
    # garbage is one line too
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="not a plain weights file"):
        load_weights(junk)
    junk.write_bytes(b"")
    with pytest.raises(InputError, match="not a readable weights file"):
        load_weights(junk)


def test_study_show_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nothing" / "study.db"
    for sub in ("show", "list", "best"):
        assert main(["study", sub, f"sqlite:///{db}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no Optuna storage here" in err[0]
    assert not db.exists() and not db.parent.exists()


def test_ray_token_is_made_private(tmp_path: Path, monkeypatch) -> None:
    from hpc_seg.runtime import ray_local

    token = tmp_path / "ray" / "auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    ray_local.protect_token()                       # before Ray's first start: a private folder
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    token.write_text("x" * 64)
    token.chmod(0o644)
    ray_local.protect_token()
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_pool_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """A forked worker that called die_with_parent exits when its parent is killed -9."""
    code = (
        "import os, sys, time\n"
        "from hpc_seg.runtime.worker_memory import die_with_parent\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    die_with_parent(parent)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    child = int(proc.stdout.readline())
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and Path(f"/proc/{child}").exists() and \
            Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        time.sleep(0.05)
    alive = Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"
    if alive:
        os.kill(child, 9)
    assert not alive, "the worker outlived its killed parent"
