"""``hpc-seg bench train``'s synthetic slices dataset: both splits readable by training's stream."""

from __future__ import annotations

from hpc_seg.bench.train import write_synthetic_slices
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.cardiac.slices.stream import SliceStream


def test_synthetic_slices_have_a_train_and_a_validate_split(tmp_path):
    out = write_synthetic_slices(tmp_path / "slices", 10, 32, val_images=4)
    assert read_meta(out)["image_size"] == 32
    train = SliceStream(out, "train", batch_size=4, shuffle=False)
    val = SliceStream(out, "validate", batch_size=4, shuffle=False)
    assert (train.n_rows, val.n_rows) == (10, 4)
    batch = next(iter(val))
    assert batch["image"].shape[1:] == (1, 32, 32) and int(batch["mask"].max()) == 2
    assert SliceStream(write_synthetic_slices(tmp_path / "t", 3, 32), "validate",
                       batch_size=1).n_rows == 0
