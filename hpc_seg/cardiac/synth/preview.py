"""A preview figure of synthetic cine patients: basal, mid and apical short-axis slices at ED and ES
with the mask outlines, one row per patient (``python -m ... OUT.png``; the README shows one).

It renders straight from the acquisition plan (no DICOM written), so it takes seconds.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.plan import NOISE, build_plan, stream
from hpc_seg.cardiac.synth.render import render_series


def preview(out: Path, pids: list[int], seed: int, config: CineSynthConfig) -> Path:
    """Write a PNG of ``pids`` (rows) x (base, mid, apex at ED; mid at ES) to ``out``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pids), 4, figsize=(8, 2.1 * len(pids)), squeeze=False)
    for row, pid in zip(axes, pids):
        plan = build_plan(seed, pid, max(pids), config)
        sax = plan.sax(0)
        times = plan.frame_times()
        mid = sax[len(sax) // 2]
        rng = stream(seed, pid, NOISE, mid.series_number)
        images, masks = render_series(plan.anat, plan.contrast, mid.plane, times, rng,
                                      oversample=config.oversample)
        es = int(np.argmin([np.count_nonzero(m == 1) for m in masks]))
        panels = []
        for sp in (sax[0], mid, sax[-2]):
            if sp is mid:
                panels.append((images[0], masks[0], "mid ED"))
            else:
                img, msk = render_series(plan.anat, plan.contrast, sp.plane, [0.0],
                                         stream(seed, pid, NOISE, sp.series_number),
                                         oversample=config.oversample)
                panels.append((img[0], msk[0], "base ED" if sp is sax[0] else "apex ED"))
        panels.insert(2, (images[es], masks[es], "mid ES"))
        v = plan.anat.extra
        who = (f"{plan.dicom['Manufacturer'].split()[0].lower()} {plan.contrast.bits}-bit, "
               f"size {v.scale:.3f}{' (child)' if v.pediatric else ''}") if v is not None \
            else f"{plan.dicom['Manufacturer'].split()[0].lower()} (shipped phantom)"
        for ax, (img, msk, title) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=0, vmax=float(np.percentile(img, 99.5)) or 1.0)
            for label, colour in ((1, "tab:red"), (2, "tab:green"), (3, "tab:blue")):
                if (msk == label).any():
                    ax.contour(msk == label, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_title(f"{pid}: {title}", fontsize=7)
            ax.axis("off")
        row[0].text(0, -0.02, who, transform=row[0].transAxes, fontsize=6, va="top")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=72)
    plt.close(fig)
    # A fixed palette, 61 greys plus the three outline colours, keeps the README's PNG small
    # (an adaptive one spends every entry on greys and loses the outlines).
    from PIL import Image
    from matplotlib.colors import to_rgb

    colours = [(g, g, g) for g in np.linspace(0, 255, 61).astype(int)]
    colours += [tuple(int(255 * c) for c in to_rgb(n)) for n in ("tab:red", "tab:green", "tab:blue")]
    palette = Image.new("P", (1, 1))
    palette.putpalette([v for rgb in colours for v in rgb] + [0] * 3 * (256 - len(colours)))
    Image.open(buf).convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) \
        .save(out, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pids", default="1,2,3,4,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-matrix", type=int, default=160)
    parser.add_argument("--shipped", action="store_true", help="the shipped phantom (no variety)")
    args = parser.parse_args(argv)
    cfg = CineSynthConfig(variety=not args.shipped, max_matrix=args.max_matrix, n_frames=12,
                          workers=1)
    preview(args.out, [int(p) for p in args.pids.split(",")], args.seed, cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
