"""Evaluation of the transfer study: predictions, confusion, Dice, volumes, logs.

Outputs under ``out``:

- ``predictions/<method>.parquet``: per test image ``file, lv_pixels, my_pixels`` (+ ids, Dice);
- ``confusion.csv``: one row per image and method pair, published columns
  ``image set methodA methodB bg_bg bg_lv bg_my lv_bg lv_lv lv_my my_bg my_lv my_my`` (rows of the
  3x3 = methodA, the reference; columns = methodB);
- ``dice_table.csv``: mean per-image test Dice LV / MY: base, R, TL, TL2 on every subset, observer 2,
  TL2 vs observer 2; a method that did not run says why in ``note`` (e.g. "not run: no ImageNet
  weights") instead of numbers;
- ``volume_table.csv`` (+ ``volumes_per_volunteer.csv``): EDV, ESV, SV and EF per volunteer from
  LV pixels summed over slices (ED = most, ES = fewest), and the mean absolute difference in
  percent versus observer 1, for every model and observer 2;
- ``training_logs.csv``: one row per epoch and model, published columns
  ``epoch,train_loss,valid_loss,acc_seg,diceComb,diceLV,diceMY,time,model`` plus ``images_seen``;
- ``figures/validation_curves.png`` and ``figures/data_requirement.png``.

Dice follows the published definition: ``2 c_cc / (row_c + col_c)``, 1 when both are empty, on
the images as padded to the model size.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from hpc_seg.cardiac.segment import predict_images
from hpc_seg.cardiac.train.model_file import load_model
from hpc_seg.runtime.device import resolve_device
from hpc_seg.cardiac.slices.stream import binary_column_to_array
from hpc_seg.cardiac.train.metrics import confusion, metrics_from_confusion
from hpc_seg.cardiac.transfer.config import ALL_SUBSETS, INITS
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import atomic_write_bytes, shard_files

log = logging.getLogger(__name__)

CLASSES = ("bg", "lv", "my")
CONF_COLUMNS = [f"{a}_{b}" for a in CLASSES for b in CLASSES]
OBS1, OBS2 = "observer1", "observer2"
LOG_COLUMNS = ["epoch", "train_loss", "valid_loss", "acc_seg", "diceComb", "diceLV", "diceMY",
               "time", "model"]


def _test_set(slices_dir: Path) -> dict:
    cols = ["file", "patient_id", "frame", "slice", "rows", "cols", "pixel_spacing_mm",
            "slice_spacing_mm", "size", "rotated_90", "image", "mask"]
    tables = [pq.read_table(f, columns=cols) for f in shard_files(slices_dir)
              if f.name.startswith("part-test-")]
    if not tables:
        raise InputError(f"{slices_dir}: no test images")
    t = pa.concat_tables(tables)
    t = t.filter(pc.invert(t.column("rotated_90")))
    size = int(t.column("size")[0].as_py())
    info = t.drop(["image", "mask"]).to_pandas()
    order = np.argsort(info.file.to_numpy(), kind="stable")
    images = binary_column_to_array(t.column("image"), (size, size))[order]
    masks = binary_column_to_array(t.column("mask"), (size, size))[order]
    return {"info": info.iloc[order].reset_index(drop=True), "images": images, "masks": masks,
            "size": size}


def _align(ref: pd.DataFrame, other: dict, what: str) -> np.ndarray:
    pos = pd.Series(np.arange(len(other["info"])), index=other["info"].file)
    missing = set(ref.file) - set(pos.index)
    if missing:
        raise InputError(f"{what}: {len(missing)} test images of observer 1 are missing, e.g. "
                         f"{sorted(missing)[:2]}")
    return other["masks"][pos.loc[ref.file].to_numpy()]


def _predict(model_path: Path, images: np.ndarray, device: str, batch: int = 64) -> np.ndarray:
    dev = resolve_device(device)
    model, _ = load_model(model_path, str(dev))
    out = [predict_images(model, torch.from_numpy(images[i:i + batch].copy())[:, None], dev).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


def _conf_rows(conf: torch.Tensor, files: pd.Series, a: str, b: str, split: str) -> pd.DataFrame:
    df = pd.DataFrame(conf.reshape(len(files), 9).numpy(), columns=CONF_COLUMNS)
    df.insert(0, "methodB", b)
    df.insert(0, "methodA", a)
    df.insert(0, "set", split)
    df.insert(0, "image", files.to_numpy())
    return df


def dice_from_confusion(df: pd.DataFrame) -> pd.DataFrame:
    """Per-row Dice LV / MY from confusion columns (rows = methodA, columns = methodB)."""
    conf = torch.from_numpy(df[CONF_COLUMNS].to_numpy(dtype=np.int64).reshape(-1, 3, 3).copy())
    m = metrics_from_confusion(conf)
    return pd.DataFrame({"dice_lv": m["dice_lv"].numpy(), "dice_my": m["dice_my"].numpy()},
                        index=df.index)


def _volumes(info: pd.DataFrame, lv: np.ndarray, size: int) -> pd.DataFrame:
    """EDV/ESV/SV/EF per volunteer from LV pixels per test image (at the model size)."""
    df = info[["patient_id", "frame", "rows", "cols", "slice_spacing_mm"]].copy()
    ps = np.stack(info.pixel_spacing_mm.to_numpy())
    # mL per pixel of the size x size grid (undoing the fit-longer-side resize): max(X, Y)^2 psX psY slice / (1000 size^2)
    df["ml"] = lv * np.maximum(df.rows, df.cols) ** 2 * ps[:, 0] * ps[:, 1] * df.slice_spacing_mm \
        / (1000.0 * size * size)
    per_frame = df.groupby(["patient_id", "frame"]).ml.sum().reset_index()
    out = per_frame.groupby("patient_id").ml.agg(edv="max", esv="min").reset_index()
    out["sv"] = out.edv - out.esv
    out["ef"] = np.where(out.edv > 0, out.sv / out.edv.where(out.edv > 0, 1), np.nan)
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4f")
    atomic_write_bytes(buf.getvalue().encode(), path)


def training_logs(tasks: dict[str, dict]) -> pd.DataFrame:
    """Per-epoch validation logs of every task in the published columns (+ images_seen, subset, init)."""
    frames = []
    for name, t in tasks.items():
        hist = Path(t["history"])
        if not hist.is_file():
            continue
        h = pd.read_csv(hist)
        frames.append(pd.DataFrame({
            "epoch": h.epoch - 1, "train_loss": h.train_loss, "valid_loss": h.val_loss,
            "acc_seg": h.accuracy, "diceComb": h.dice_fg, "diceLV": h.dice_lv, "diceMY": h.dice_my,
            "time": h.seconds, "model": name, "subset": t["subset"], "init": t["init"],
            "images_seen": h.epoch * int(t["n_images"])}))
    if not frames:
        return pd.DataFrame(columns=[*LOG_COLUMNS, "subset", "init", "images_seen"])
    return pd.concat(frames, ignore_index=True)


def evaluate_transfer(tasks: dict[str, dict], skipped: dict[str, str], slices_dir: Path,
                      out: Path, *, base_model: Path | None = None,
                      observer2_dir: Path | None = None, device: str = "auto") -> dict[str, str]:
    """Evaluate every finished task (``{name: {model, history, subset, init, n_images}}``)."""
    from hpc_seg.cardiac.transfer import figures

    out = Path(out)
    test = _test_set(Path(slices_dir))
    info, size = test["info"], test["size"]
    obs1 = torch.from_numpy(test["masks"]).long()
    obs2 = None
    if observer2_dir is not None and Path(observer2_dir).is_dir():
        obs2 = torch.from_numpy(_align(info, _test_set(Path(observer2_dir)), str(observer2_dir))).long()
    methods: dict[str, Path] = {}
    if base_model is not None:
        methods["base"] = Path(base_model)
    for name, t in tasks.items():
        methods[name] = Path(t["model"])
    conf_parts, vols, dice_rows = [], [], []
    vols.append(_volumes(info, (obs1 == 1).sum((1, 2)).numpy(), size).assign(method=OBS1))
    if obs2 is not None:     # confusion(pred, target): rows observer 1, columns observer 2
        conf_parts.append(_conf_rows(confusion(obs2, obs1), info.file, OBS1, OBS2, "test"))
        vols.append(_volumes(info, (obs2 == 1).sum((1, 2)).numpy(), size).assign(method=OBS2))
    for name, path in methods.items():
        pred_path = out / "predictions" / f"{name}.parquet"
        pred = torch.from_numpy(_predict(path, test["images"], device)).long()
        c1 = confusion(pred, obs1)
        m = metrics_from_confusion(c1)
        df = info[["file", "patient_id", "frame", "slice"]].copy()
        df["lv_pixels"] = (pred == 1).sum((1, 2)).numpy()
        df["my_pixels"] = (pred == 2).sum((1, 2)).numpy()
        df["dice_lv"], df["dice_my"] = m["dice_lv"].numpy(), m["dice_my"].numpy()
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(buf.getvalue(), pred_path)
        conf_parts.append(_conf_rows(c1, info.file, OBS1, name, "test"))
        if obs2 is not None:
            conf_parts.append(_conf_rows(confusion(pred, obs2), info.file, OBS2, name, "test"))
        vols.append(_volumes(info, df.lv_pixels.to_numpy(), size).assign(method=name))
    conf = pd.concat(conf_parts, ignore_index=True) if conf_parts else pd.DataFrame(
        columns=["image", "set", "methodA", "methodB", *CONF_COLUMNS])
    _write_csv(conf, out / "confusion.csv")
    dice = pd.concat([conf, dice_from_confusion(conf)], axis=1) if len(conf) else conf
    mean = dice.groupby(["methodA", "methodB"])[["dice_lv", "dice_my"]].mean() if len(conf) else None

    def row(label: str, a: str, b: str, subset: str, init: str) -> dict:
        if b in skipped:
            return {"model": label, "subset": subset, "init": init, "reference": a,
                    "LV": np.nan, "MY": np.nan, "note": skipped[b]}
        if mean is None or (a, b) not in mean.index:
            return {"model": label, "subset": subset, "init": init, "reference": a,
                    "LV": np.nan, "MY": np.nan, "note": "not run"}
        lv, my = mean.loc[(a, b)]
        return {"model": label, "subset": subset, "init": init, "reference": a, "LV": lv,
                "MY": my, "note": ""}

    if base_model is not None:
        dice_rows.append(row("base", OBS1, "base", "", "base"))
    for subset in ALL_SUBSETS:
        for init in INITS:
            name = f"{subset}-{init}"
            if name in methods or name in skipped:
                label = init if subset == "full" else f"{init}-{subset}"
                dice_rows.append(row(label, OBS1, name, subset, init))
    if obs2 is not None:
        dice_rows.append(row("observer 2", OBS1, OBS2, "", "observer2"))
        dice_rows.append(row("TL2 vs observer 2", OBS2, "full-TL2", "full", "TL2"))
    dice_table = pd.DataFrame(dice_rows)
    _write_csv(dice_table, out / "dice_table.csv")
    per_vol = pd.concat(vols, ignore_index=True)
    _write_csv(per_vol, out / "volumes_per_volunteer.csv")
    ref = per_vol[per_vol.method == OBS1].set_index("patient_id")
    vrows = []
    for method, g in per_vol[per_vol.method != OBS1].groupby("method", sort=False):
        g = g.set_index("patient_id")
        r = {"method": method}
        for k in ("edv", "esv", "sv", "ef"):
            r[f"{k}_diff_pct"] = float((100 * (g[k] - ref.loc[g.index, k]).abs()
                                        / ref.loc[g.index, k].abs()).mean())
        vrows.append(r)
    for name, why in skipped.items():
        vrows.append({"method": name, "note": why})
    _write_csv(pd.DataFrame(vrows), out / "volume_table.csv")
    logs = training_logs(tasks)
    _write_csv(logs, out / "training_logs.csv")
    figs = out / "figures"
    figures.validation_curves(logs, figs / "validation_curves.png")
    figures.data_requirement(dice_table, figs / "data_requirement.png")
    log.info("transfer Dice table (test, mean per image):\n%s",
             dice_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return {"dice_table": str(out / "dice_table.csv"), "confusion": str(out / "confusion.csv"),
            "volume_table": str(out / "volume_table.csv"),
            "training_logs": str(out / "training_logs.csv"),
            "data_requirement": str(figs / "data_requirement.png"),
            "validation_curves": str(figs / "validation_curves.png")}
