"""cluster/offline-bundle: what it packs for a node without a package index, and how it unpacks."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import stat
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    loader = importlib.machinery.SourceFileLoader("offline_bundle", str(REPO / "cluster" / "offline-bundle"))
    spec = importlib.util.spec_from_loader("offline_bundle", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_closure_holds_the_runtime_requirements_and_their_extras():
    bundle = _script()
    pins = bundle.closure("hpc-seg", "3.12", set())
    for name in ("ray", "optuna", "pydicom", "pylibjpeg-libjpeg", "sqlalchemy", "torch"):
        assert name in pins, name
    # ray[default] pulls the dashboard agent's needs; dev tools are not runtime requirements
    assert "aiohttp-cors" in pins and "opencensus" in pins
    assert "pytest" not in pins and "import-linter" not in pins


def test_skip_lists_read_files_and_comma_lists(tmp_path):
    bundle = _script()
    f = tmp_path / "have.txt"
    f.write_text("# the node's image\nNumPy\npyarrow  # pinned there\n\n")
    assert bundle.read_skip(["Pandas,typing_extensions"], [str(f)]) == \
        {"numpy", "pyarrow", "pandas", "typing-extensions"}


def test_unpack_keeps_executables_and_leaves_out_what_no_command_uses(tmp_path):
    bundle = _script()
    wheel = tmp_path / "ray-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        exe = zipfile.ZipInfo("ray/core/src/ray/raylet/raylet")
        exe.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(exe, b"\x7fELF")
        zf.writestr("ray/__init__.py", "")
        zf.writestr("ray/jars/ray_dist.jar", b"jar")
        zf.writestr("ray/dashboard/client/build/main.js.map", b"map")
    site = tmp_path / "site"
    assert bundle.unpack(wheel, site) == 2
    assert os.access(site / "ray/core/src/ray/raylet/raylet", os.X_OK)
    assert (site / "ray/__init__.py").is_file() and not (site / "ray/jars").exists()
