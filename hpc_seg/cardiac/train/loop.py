"""Train one 2D U-Net on the ``slices`` dataset: frozen then unfrozen one-cycle, AMP, resume.

The published schedule: a one-cycle at ``lr`` with the encoder frozen (its BatchNorm
layers still train, as in fastai), then a one-cycle at ``lr * unfrozen_lr_factor`` with everything
trainable; AdamW with decoupled weight decay 0.01 (fastai's Adam). Every epoch ends with a
validation pass over the ``validate`` split, a checkpoint (model, optimiser, epoch, stage, RNG
states, history), a row in ``history.csv``, and a call to ``report`` (the Tune trainable forwards
it). Data order and augmentations derive from ``(seed, epoch)`` only, so a run that is killed and
resumed ends with the same weights as one that was not.

``appearance = "random"`` or ``"tissue"`` trains from label maps alone (a slices dataset of
``structures``, from ``hpc-seg label-maps``): every training image is rendered on the fly with
random appearance (:mod:`.appearance`; ``tissue`` ties the means of one tissue's structures, found
by the names in the dataset's ``_meta.json``) before the augmentation; such a dataset's validation
images are rendered the same way from one fixed seed, so every epoch validates on the same
images. ``appearance = "hybrid"`` needs both columns (``hpc-seg label-maps --images``): half of
each batch is rendered, half the stored images; it validates on the stored images.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hpc_seg.config import to_dict
from hpc_seg.storage.shards import atomic_write_bytes, output_error
from hpc_seg.cardiac.slices.stream import SliceStream
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.errors import ConfigError, InputError, SettingsChangedError
from hpc_seg.cardiac.models.unet2d import Unet2d
from hpc_seg.cardiac.train.appearance import render_batch, tissue_groups
from hpc_seg.cardiac.train.augment import augment_batch
from hpc_seg.cardiac.train.banding import random_banding
from hpc_seg.cardiac.train.coil_array import random_coil_array
from hpc_seg.cardiac.train.intensity_remap import random_conv_remap
from hpc_seg.runtime.checkpoint import (list_checkpoints, load_latest, load_weights, rng_state,
                                      save_checkpoint, set_rng_state)
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.cardiac.train.losses import LOSSES
from hpc_seg.cardiac.train.metrics import METRIC_NAMES, image_metrics
from hpc_seg.cardiac.train.model_file import build_model, model_state
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.device import amp_dtype, autocast, resolve_device, use_channels_last
from hpc_seg.runtime.schedule import OneCycle
from hpc_seg.runtime.seeding import seed_everything
from hpc_seg.runtime.threads import configure_torch_threads

__all__ = ["TrainConfig", "TrainResult", "mix_renderings", "place_model", "train_segmenter",
           "train_step"]

log = logging.getLogger(__name__)

VALIDATION_RENDER_SEED = 99991
# appearance = "hybrid": the fraction of each batch rendered from label maps (the rest are the
# stored images): the stored half teaches where the labels put the borders on real pixels, the
# rendered half takes away the one source's grey values. An even mix, not tuned: `bench
# generalise` measured only this value (README).
HYBRID_RENDERED = 0.5
# `precision` (bf16|fp32): what the epoch ran in, so a wall time (bf16 autocast is about twice as
# fast on a CPU with AMX) and a score are never compared across precisions unknowingly.
HISTORY_FIELDS = ["epoch", "stage", "lr", "train_loss", "val_loss", *METRIC_NAMES, "images_per_s",
                  "seconds", "precision", "checkpoint"]


@dataclass
class TrainResult:
    """Where a finished run put its outputs, and its last epoch's metrics."""

    model_path: Path
    history_path: Path
    epochs: int
    final: dict[str, Any] = field(default_factory=dict)
    best_dice_fg: float = float("nan")
    resumed_from_epoch: int = 0


@dataclass
class _Run:
    """The mutable state of a run (what a checkpoint restores)."""

    model: Unet2d
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def train_segmenter(cfg: TrainConfig, slices_dir: Path, out_dir: Path,
                    report: Callable[[dict], None] | None = None, resume: bool = True,
                    progress: bool = False) -> TrainResult:
    """Train ``cfg`` on ``slices_dir`` (train split; validate split for metrics) into ``out_dir``."""
    slices_dir, out_dir = Path(slices_dir), Path(out_dir)
    meta = read_meta(slices_dir)
    if int(meta["image_size"]) != cfg.image_size:
        raise ConfigError(f"image_size {cfg.image_size} does not match {slices_dir} "
                          f"(built at {meta['image_size']}); build slices at that size")
    model_path, history_path = out_dir / "model.pt", out_dir / "history.csv"
    config = to_dict(cfg)
    if resume and model_path.is_file():
        done = _finished_model(model_path)
        if done is not None and _with_defaults(done.get("config", {})) == config:
            log.info("%s: finished model with this config exists; skipping training", model_path)
            return _result(model_path, history_path, done.get("history", []), 0)
    train_columns, val_columns = _columns(cfg, meta, slices_dir)
    groups = _groups(cfg, meta)
    configure_torch_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    precision = "fp32" if amp_dtype(device, cfg.amp) is None else "bf16"
    train_ds = SliceStream(slices_dir, "train", confidence_set=cfg.confidence_set,
                           batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                           shuffle_buffer=cfg.shuffle_buffer, max_images=cfg.max_train_images,
                           columns=train_columns)
    val_ds = SliceStream(slices_dir, "validate", confidence_set=cfg.confidence_set,
                         batch_size=max(cfg.batch_size, 32), shuffle=False, seed=cfg.seed,
                         max_images=cfg.max_val_images, columns=val_columns)
    for ds in (train_ds, val_ds):
        if ds.n_rows == 0:
            raise InputError(f"{slices_dir}: no {ds.split} images in confidence set "
                             f"{cfg.confidence_set!r}; use a larger set or check the split rule")
    model = place_model(build_model(cfg, init=True), cfg, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.95, 0.99),
                                  weight_decay=cfg.weight_decay)
    run = _Run(model, optimizer)
    ckpt_dir = out_dir / "checkpoints"
    if not resume:  # a fresh start must never later resume from the old run's newer files
        for old in list_checkpoints(ckpt_dir):
            old.unlink()
    resumed_from = _restore(run, ckpt_dir, config) if resume else 0
    spe = train_ds.batches_per_epoch()
    schedules = {"frozen": OneCycle(cfg.lr, cfg.epochs_frozen * spe),
                 "unfrozen": OneCycle(cfg.lr * cfg.unfrozen_lr_factor, cfg.epochs_unfrozen * spe)}
    loss_fn = LOSSES[cfg.loss]
    log.info("training %s/%s/%s on %s: %d train, %d validate images, %d epochs, device %s, "
             "augment %s (min zoom %g), appearance %s, banding %g, coil noise %g, intensity remap %g",
             cfg.encoder, cfg.loss, cfg.confidence_set, slices_dir, train_ds.images_per_epoch,
             val_ds.n_rows, cfg.epochs, device, cfg.augment, cfg.min_zoom, cfg.appearance,
             cfg.banding, cfg.coil_noise, cfg.intensity_remap)
    loader_kw = {"batch_size": None, "num_workers": cfg.num_workers,
                 "pin_memory": device.type == "cuda"}
    for epoch in range(run.epoch, cfg.epochs):
        stage = "frozen" if epoch < cfg.epochs_frozen else "unfrozen"
        first_step = (epoch - (0 if stage == "frozen" else cfg.epochs_frozen)) * spe
        model.set_encoder_frozen(stage == "frozen" and cfg.freeze_encoder)
        train_ds.set_epoch(epoch)
        t0 = time.perf_counter()
        # A live bar (rate, ETA) per epoch for `hpc-seg train`: on CPU one epoch can take minutes.
        # Search trials pass progress=False: a bar per trial would flood the driver's console.
        bar = progress_bar(f"epoch {epoch + 1}/{cfg.epochs}", spe, "batches") if progress \
            else nullcontext(None)
        with bar as b:
            train_loss, n_images, lr = _train_epoch(cfg, run, DataLoader(train_ds, **loader_kw),
                                                    loss_fn, schedules[stage], first_step, epoch,
                                                    device, b, groups)
        seconds = time.perf_counter() - t0
        metrics = evaluate_stream(model, DataLoader(val_ds, **loader_kw), loss_fn, cfg, device,
                                  groups)
        run.epoch = epoch + 1
        row = {"epoch": epoch + 1, "stage": stage, "lr": lr, "train_loss": train_loss, **metrics,
               "images_per_s": n_images / max(seconds, 1e-9), "seconds": seconds,
               "precision": precision}
        run.history.append(row)  # before saving: the checkpoint carries the history up to here
        row["checkpoint"] = str(_save(run, ckpt_dir, config, stage, cfg.keep_checkpoints))
        _write_history(run.history, history_path)
        log.info("epoch %d/%d (%s): train_loss %.4f val_loss %.4f dice_lv %.3f dice_my %.3f "
                 "%.1f img/s", epoch + 1, cfg.epochs, stage, train_loss, metrics["val_loss"],
                 metrics["dice_lv"], metrics["dice_my"], row["images_per_s"])
        if report is not None:
            report(dict(row))
    state = model_state(model, cfg, history=run.history, label_source=meta.get("label_source", ""))
    _atomic_torch_save(state, model_path)
    return _result(model_path, history_path, run.history, resumed_from)


def place_model(model: Unet2d, cfg: TrainConfig, device: torch.device) -> Unet2d:
    """``model`` on ``device``, in channels_last memory where that is used."""
    model = model.to(device)
    if use_channels_last(device, cfg.channels_last):
        model = model.to(memory_format=torch.channels_last)
    return model


def train_step(model: Unet2d, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               cfg: TrainConfig, loss_fn: Callable, device: torch.device,
               gen: torch.Generator, groups: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, int]:
    """One optimiser step on a batch of uint8 images (or, with ``appearance = "random"`` or
    ``"tissue"``, label maps rendered here with random appearance; ``groups`` ties the tissues;
    ``"hybrid"`` renders a random half of the batch) and masks: augment, add dark bands
    (``banding``), receive through random coil arrays (``coil_noise``), remap the intensities
    (``intensity_remap``), forward under mixed
    precision where the hardware has it, float32 loss, backward, update.

    Returns the (detached) loss and the batch size. ``hpc-seg bench train`` times this function.
    """
    masks = batch["mask"].to(device, non_blocking=True).long()
    if cfg.appearance in ("random", "tissue"):
        images, masks, _ = render_batch(batch["structures"].to(device).long(), masks, gen,
                                        groups=groups)
    else:
        images = batch["image"].to(device, non_blocking=True).float().div_(255.0)
    if cfg.appearance == "hybrid":
        images, masks, _ = mix_renderings(images, masks, batch["structures"], gen, groups)
    images, masks = augment_batch(images, masks, cfg.augment, gen, cfg.min_zoom)
    images = random_banding(images, gen, cfg.banding)
    images = random_coil_array(images, gen, cfg.coil_noise)
    images = random_conv_remap(images, gen, cfg.intensity_remap)
    if use_channels_last(device, cfg.channels_last):
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, cfg.amp):
        loss = loss_fn(model(images), masks)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), images.shape[0]


def mix_renderings(images: torch.Tensor, masks: torch.Tensor, structures: torch.Tensor,
                   gen: torch.Generator, groups: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``appearance = "hybrid"``: each sample is, with probability :data:`HYBRID_RENDERED`, replaced
    by a rendering of its label map (``structures``) with random appearance, its mask by the
    rendering's (deformed) mask. Returns (images, masks, which samples were rendered)."""
    # Drawn on the CPU generator, like the renderer's draws, so a resumed run mixes alike.
    pick = torch.rand(images.shape[0], generator=gen) < HYBRID_RENDERED
    if not bool(pick.any()):
        return images, masks, pick
    on = pick.to(images.device)
    rendered, rendered_masks, _ = render_batch(structures[pick].to(images.device).long(),
                                               masks[on], gen, groups=groups)
    images, masks = images.clone(), masks.clone()
    images[on] = rendered
    masks[on] = rendered_masks
    return images, masks, pick


def _train_epoch(cfg: TrainConfig, run: _Run, loader: DataLoader, loss_fn, schedule: OneCycle,
                 step: int, epoch: int, device: torch.device, bar: Any = None,
                 groups: torch.Tensor | None = None) -> tuple[float, int, float]:
    model, opt = run.model, run.optimizer
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    total, n, lr = 0.0, 0, schedule.at(step)[0]
    for batch in loader:
        lr = schedule.apply(opt, step)
        loss, size = train_step(model, opt, batch, cfg, loss_fn, device, gen, groups)
        step += 1
        total += float(loss) * size
        n += size
        if bar is not None:
            bar.advance()
    return total / max(n, 1), n, lr


@torch.no_grad()
def evaluate_stream(model: torch.nn.Module, loader, loss_fn, cfg: TrainConfig,
                    device: torch.device, groups: torch.Tensor | None = None) -> dict[str, float]:
    """Mean loss and mean per-image metrics over a validation stream.

    A stream of label maps (``structures``, no images) is rendered with random appearance from
    one fixed seed (``groups`` as in training), so that each call sees the same images.
    """
    model.eval()
    sums = dict.fromkeys(("val_loss", *METRIC_NAMES), 0.0)
    n = 0
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + VALIDATION_RENDER_SEED)
    for batch in loader:
        masks = batch["mask"].to(device).long()
        if "image" in batch:
            images = batch["image"].to(device).float().div_(255.0)
        else:
            images, masks, _ = render_batch(batch["structures"].to(device).long(), masks, gen,
                                            groups=groups)
        if use_channels_last(device, cfg.channels_last):
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, cfg.amp):
            logits = model(images).float()
        sums["val_loss"] += float(loss_fn(logits, masks)) * images.shape[0]
        for k, v in image_metrics(logits.argmax(1), masks, cfg.num_classes).items():
            sums[k] += float(v.sum())
        n += images.shape[0]
    return {k: v / max(n, 1) for k, v in sums.items()}


def _columns(cfg: TrainConfig, meta: dict, slices_dir: Path
             ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The slices columns the training and the validation streams read."""
    has_images = meta.get("images", True)
    has_structures = "structures" in meta
    renders = cfg.appearance != "image"
    needs_images = cfg.appearance in ("image", "hybrid")
    if renders and not has_structures:
        raise ConfigError(f"{slices_dir}: appearance = \"{cfg.appearance}\" renders images from "
                          "label maps, but this dataset has none; build one with "
                          "`hpc-seg label-maps`")
    if needs_images and not has_images:
        raise ConfigError(f"{slices_dir}: built from label maps alone (no images); train it with "
                          "appearance = \"random\" or \"tissue\""
                          + (", or add the images with `hpc-seg label-maps --images`"
                             if cfg.appearance == "hybrid" else ""))
    train = (("image",) if needs_images else ()) + (("structures",) if renders else ()) \
        + ("mask",)
    return train, ("image", "mask") if has_images else ("structures", "mask")


def _groups(cfg: TrainConfig, meta: dict) -> torch.Tensor | None:
    """The tissue groups of the dataset's structure ids for ``appearance = "tissue"`` or
    ``"hybrid"``, else None."""
    if cfg.appearance not in ("tissue", "hybrid"):
        return None
    names = {int(k): v for k, v in meta.get("structures", {}).items()}
    groups = tissue_groups(names)
    size = Counter(int(groups[i]) for i in names)
    shared = sorted(names[i] for i in names if size[int(groups[i])] > 1)
    if not shared:
        log.warning("appearance tissue: no two structures of %s share a tissue (names: %s); "
                    "every structure gets its own random mean, as appearance random",
                    meta.get("label_maps_dir", "the dataset"), ", ".join(names.values()) or "none")
    else:
        log.info("appearance tissue: shared means for %s", ", ".join(shared))
    return groups


def _save(run: _Run, ckpt_dir: Path, config: dict, stage: str, keep: int) -> Path:
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "epoch": run.epoch, "stage": stage, "config": config, "history": run.history,
             "rng": rng_state()}
    try:
        return save_checkpoint(state, ckpt_dir, run.epoch, keep=keep)
    except OSError as exc:
        raise output_error(ckpt_dir, exc) from None


def _finished_model(path: Path) -> dict[str, Any] | None:
    """The finished ``model.pt`` of an earlier run, or None (with a warning naming the file)
    when it cannot be loaded: training then starts clean and replaces it."""
    try:
        done = load_weights(path)
    except InputError as exc:
        log.warning("%s; training again from the start", exc)
        return None
    if not isinstance(done, dict):
        log.warning("%s: not an hpc-seg model file (holds a %s); training again from the start",
                    path, type(done).__name__)
        return None
    return done


def _with_defaults(saved: dict) -> dict:
    """A saved run's config with every key TrainConfig gained since at its default: the behaviour
    before the key existed, so an upgrade neither strands a run nor re-trains a finished one."""
    return {**to_dict(TrainConfig()), **saved}


def _restore(run: _Run, ckpt_dir: Path, config: dict) -> int:
    # Load on the CPU: RNG states must stay CPU tensors; load_state_dict moves weights and
    # optimiser moments to the parameters' device.
    state = load_latest(ckpt_dir, map_location="cpu")
    if state is None:
        return 0
    saved = _with_defaults(state.get("config", {}))
    if saved != config:
        diff = sorted(k for k in saved.keys() | config.keys() if saved.get(k) != config.get(k))
        raise SettingsChangedError(f"{ckpt_dir}: checkpoints were written with another config "
                                   f"(differs in {', '.join(diff)}); use another output folder "
                                   "or --restart")
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.epoch, run.history = int(state["epoch"]), list(state["history"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{ckpt_dir}: the newest loadable checkpoint does not fit this run "
                         f"({cause}); remove it or train with --restart") from None
    set_rng_state(state["rng"])
    log.info("resumed after epoch %d (%s stage)", run.epoch, state["stage"])
    return run.epoch


def _write_history(history: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(buf.getvalue().encode(), path)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(buf.getvalue(), path)


def _result(model_path: Path, history_path: Path, history: list[dict], resumed_from: int) -> TrainResult:
    best = max((h["dice_fg"] for h in history), default=float("nan"))
    return TrainResult(model_path=model_path, history_path=history_path, epochs=len(history),
                       final=dict(history[-1]) if history else {}, best_dice_fg=best,
                       resumed_from_epoch=resumed_from)
