"""The 7T-like cohort: deterministic per (seed, volunteer), 7T headers, ranges, two observers."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig, generate_7t_cohort, generate_volunteer
from hpc_seg.errors import ConfigError, OutputError

TINY = dict(volunteers=4, second_observer=2, max_matrix=40, slices=(6, 7), frames=(4, 6))


def test_deterministic_and_shaped_as_7t(tmp_path):
    cfg = Synth7TConfig(**TINY)
    manifest = json.loads(generate_7t_cohort(tmp_path / "a", cfg).read_text())
    assert len(manifest["second_observer"]) == 2 and manifest["con_slice_order"] == "reversed"
    for vid, v in manifest["volunteers"].items():
        assert 6 <= v["slices"] <= 7 and 4 <= v["frames"] <= 6
        assert (tmp_path / "a" / vid / f"{vid}_observer2.con").exists() == v["second_observer"]
        files = sorted((tmp_path / "a" / vid / "dicom").rglob("*.dcm"))
        assert len(files) == v["slices"] * v["frames"]
        ds = pydicom.dcmread(files[0])
        assert float(ds.MagneticFieldStrength) == 7.0 and ds.ScanningSequence == "GR"
        assert float(ds.SliceThickness) <= 6.0
    # the same volunteer again, alone: identical files
    generate_volunteer(cfg, 2, tmp_path / "b", second=True)
    for rel in ["2/2.con", "2/2_observer2.con"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    a = sorted((tmp_path / "a" / "2" / "dicom").rglob("*.dcm"))
    b = sorted((tmp_path / "b" / "2" / "dicom").rglob("*.dcm"))
    assert [p.name for p in a] == [p.name for p in b]
    assert all(np.array_equal(pydicom.dcmread(x).pixel_array, pydicom.dcmread(y).pixel_array)
               for x, y in zip(a, b))
    with pytest.raises(OutputError, match=r"other settings \(seed 0 -> 1\)"):
        generate_7t_cohort(tmp_path / "a", Synth7TConfig(**{**TINY, "seed": 1}))


def test_config_errors():
    with pytest.raises(ConfigError, match="0 <= second_observer <= volunteers, got 22, 30"):
        Synth7TConfig(second_observer=30)
    with pytest.raises(ConfigError, match=r"frames >= 4, got \(14, 18\), \(2, 3\)"):
        Synth7TConfig(frames=(2, 3))
