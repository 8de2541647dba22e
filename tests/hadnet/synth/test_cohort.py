"""``synth brats``: layout, determinism, tumour labels and the contrasts that make ET hard."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from hpc_seg.cli import main
from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, generate_case, split_of
from hpc_seg.errors import OutputError

from tests.hadnet.fixtures import TINY, tiny_cohort


def test_layout_manifest_and_geometry(tmp_path):
    root = tiny_cohort(tmp_path / "raw", cases=5)
    manifest = json.loads((root / "manifest.json").read_text())
    assert [c["index"] for c in manifest["cases"]] == list(range(5))
    assert [c["split"] for c in manifest["cases"]] == ["train", "train", "train", "val", "test"]
    for c in manifest["cases"]:
        d = root / c["grade"] / c["subject"]
        assert c["subject"] == f"BraTS19_SYN_{c['index']:04d}_1"
        imgs = {s: nib.load(d / f"{c['subject']}_{s}.nii.gz") for s in
                ("flair", "t1", "t1ce", "t2", "seg")}
        for img in imgs.values():
            assert img.shape == (32, 32, 24)
            assert np.allclose(img.affine, imgs["flair"].affine)
        assert np.allclose(np.abs(np.diag(imgs["flair"].affine)[:3]), 6.5)
        seg = np.asarray(imgs["seg"].dataobj)
        assert set(np.unique(seg)) <= {0, 1, 2, 4} and (seg == 2).any()
        flair = np.asarray(imgs["flair"].dataobj)
        assert flair.dtype == np.int16 and flair[0, 0, 0] == 0 and (flair > 0).mean() > 0.1
    assert not list(root.glob("*/.tmp-*"))


def test_cases_are_identical_whatever_the_worker_count_and_rerun_skips(tmp_path):
    a = tiny_cohort(tmp_path / "a", cases=3, workers=1)
    b = tiny_cohort(tmp_path / "b", cases=3, workers=2)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.nii.gz"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.nii.gz")) and len(files_a) == 15
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    before = {p: p.stat().st_mtime_ns for p in a.rglob("*.nii.gz")}
    tiny_cohort(a, cases=3)
    assert {p: p.stat().st_mtime_ns for p in a.rglob("*.nii.gz")} == before
    with pytest.raises(OutputError, match=r"other settings \(seed 3 -> 4\)"):
        tiny_cohort(a, cases=3, seed=4)
    c = tiny_cohort(tmp_path / "c", cases=3, seed=4)
    assert any((a / r).read_bytes() != (c / r).read_bytes() for r in files_a if (c / r).exists())


def _tissue_means(case, label):
    seg = case["seg"]
    return {s: float(v[seg == label].mean()) for s, v in case["images"].items()}


def test_enhancement_is_a_t1ce_feature_and_edema_is_bright_on_flair_t2():
    cfg = SynthBratsConfig(cases=1, seed=0, shape=(64, 64, 48), spacing=3.5, noise=0.0,
                           lgg_fraction=0.0)
    case = generate_case(cfg, 1)
    assert case["grade"] == "HGG" and (case["seg"] == 4).sum() > 20
    et, ed = _tissue_means(case, 4), _tissue_means(case, 2)
    brain = case["images"]
    # T1ce: ET far brighter than edema; on the other sequences within ~25 % (a weak cue only).
    assert et["t1ce"] > 1.8 * ed["t1ce"]
    for s in ("flair", "t1", "t2"):
        assert abs(et[s] - ed[s]) < 0.25 * ed[s], s
    # Edema bright on FLAIR and T2 compared with the rest of the head.
    head = case["seg"] == 0
    for s in ("flair", "t2"):
        assert ed[s] > 1.3 * float(brain[s][head & (brain[s] > 0)].mean()), s


def test_lgg_cases_have_little_enhancement_and_split_rule():
    cfg = SynthBratsConfig(cases=1, seed=0, lgg_fraction=1.0, **TINY)
    segs = [generate_case(cfg, i)["seg"] for i in range(10)]
    assert sum(int((s == 4).sum()) == 0 for s in segs) >= 3
    assert sum(int((s == 4).sum()) for s in segs) < 0.5 * sum(int((s == 1).sum()) for s in segs)
    assert [split_of(i) for i in range(10)] == (["train"] * 3 + ["val", "test"]) * 2


def test_cli_writes_the_cohort(tmp_path, capsys):
    rc = main(["synth", "brats", str(tmp_path / "o"), "--cases", "2", "--seed", "1",
               "--shape", "32", "32", "24", "--spacing", "6.5", "--workers", "1"])
    assert rc == 0 and "2 cases" in capsys.readouterr().out
    assert len(list((tmp_path / "o").rglob("*_seg.nii.gz"))) == 2
    assert (tmp_path / "o" / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_are_config_errors(tmp_path, capsys):
    rc = main(["synth", "brats", str(tmp_path / "o"), "--cases", "0"])
    assert rc == 2 and "cases must be >= 1" in capsys.readouterr().err
