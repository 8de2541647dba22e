"""What the 7T transfer study found in a run folder, for the report (see
:mod:`hpc_seg.report.findings`).

Headlines come from the evaluation's ``dice_table.csv`` (mean per-image test Dice against
observer 1): TL2 and R on the full training set beside the published .900 and .880 (and TL
beside .908 when it ran), and TL2 against R on the smallest subset that both ran, where the
paper finds TL2 far ahead. n and sd are over the test images (``predictions/<model>.parquet``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hpc_seg.report.findings import (Evidence, Figure, Headline, StudyFindings, clear_of_zero,
                                     extra_columns, find_files, paired_comparison, read_csv)

if TYPE_CHECKING:
    import pandas as pd

TITLE = "Transfer learning to 7T"
REFERENCE = "Ankenbrand et al., MRM 2021, section 5"
#: published test Dice LV / MY against observer 1
PUBLISHED = {"base": (0.835, 0.670), "TL2": (0.900, 0.791), "TL2-esed": (0.908, 0.805),
             "TL": (0.908, 0.791), "R": (0.880, 0.756), "observer 2": (0.939, 0.813),
             "TL2 vs observer 2": (0.907, 0.812)}
#: published training-set sizes (images) of the subsets (a random subset is as large as its twin)
PUBLISHED_IMAGES = {"full": 5076, "v7": 2626, "r7": 2626, "v3": 1001, "r3": 1001, "v1": 306,
                    "r1": 306, "esed": 448, "r_esed": 448}
#: within this much of the published Dice counts as matching it
CLOSE = 0.02
DICE_COLUMNS = {"model", "subset", "init", "reference", "LV", "MY", "note"}
SUBSET_ORDER = ("full", "v7", "r7", "v3", "r3", "v1", "r1", "esed", "r_esed")


def _images(folder: Path, model: str) -> pd.DataFrame | None:
    """Per-image Dice of ``model`` against observer 1 (its predictions file)."""
    import pandas as pd

    path = folder / "predictions" / f"{model}.parquet"
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path, columns=["file", "dice_lv", "dice_my"])
    except (OSError, ValueError, KeyError):
        return None


def _row(dice: pd.DataFrame, subset: str, init: str) -> dict | None:
    rows = dice[(dice.subset.astype(str) == subset) & (dice.init.astype(str) == init)
                & (dice.reference.astype(str) == "observer1")]
    return None if rows.empty else rows.iloc[0].to_dict()


def _verdict(value: float, published: float) -> str:
    diff = value - published
    if abs(diff) <= CLOSE:
        return f"matches the published {published:.3f}"
    return f"{'above' if diff > 0 else 'below'} the published {published:.3f} by {abs(diff):.2f}"


def _context(root: Path) -> str:
    """How this run differs in size from the published one (image size, training images)."""
    try:
        plan = json.loads((root / "tasks.json").read_text())
        spec = next(s for s in plan["specs"] if s["subset"] == "full")
    except (OSError, ValueError, KeyError, StopIteration):
        return ""
    size = spec.get("train", {}).get("image_size")
    epochs = spec.get("train", {}).get("epochs_frozen")
    parts = [f"{spec['n_images']} training images (published 5076)"]
    if size:
        parts.append(f"{size} px (published 256)")
    if epochs:
        parts.append(f"{epochs} + {spec['train'].get('epochs_unfrozen', epochs)} epochs "
                     "(published 10 + 10)")
    return "This run: " + ", ".join(parts) + "."


def _full_headline(dice: pd.DataFrame, folder: Path, rel: str, init: str) -> Headline | None:
    row = _row(dice, "full", init)
    if row is None:
        return None
    lv, my = PUBLISHED[init]
    key = f"transfer.{init.lower()}_lv"
    label = f"{init}: test Dice LV, full training set"
    if row["LV"] != row["LV"]:      # NaN: the task did not run; the note says why
        return Headline(key=key, label=label, short=f"Dice LV, {init} (full)", value=None,
                        missing=str(row.get("note") or "not run"), published=lv, decimals=3,
                        published_text=f"{init}, full set", verdict="not run",
                        source=f"{rel}: model {row['model']}")
    images = _images(folder, f"full-{init}")
    n = len(images) if images is not None else None
    sd = float(images.dice_lv.std()) if images is not None and n and n > 1 else None
    mine = (f"MY {float(row['MY']):.3f} against the published {my:.3f}."
            if row["MY"] == row["MY"] else "")
    return Headline(
        key=key, label=label, short=f"Dice LV, {init} (full)", value=float(row["LV"]),
        decimals=3, n=n, n_unit="test images", spread=sd, published=lv,
        published_text=f"{init}, full set", verdict=_verdict(float(row["LV"]), lv), detail=mine,
        source=f"{rel}: model {row['model']}, column LV")


def _subset_sizes(root: Path) -> dict[str, int]:
    """Training images per subset, from the array's task list."""
    try:
        plan = json.loads((root / "tasks.json").read_text())
        return {s["subset"]: int(s["n_images"]) for s in plan["specs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _subset_headline(dice: pd.DataFrame, folder: Path, rel: str, sizes: dict[str, int]
                     ) -> Headline | None:
    """TL2 - R (LV) on the smallest subset where both ran; how many subsets TL2 leads."""
    both = []
    for subset in SUBSET_ORDER:
        tl2, r = _row(dice, subset, "TL2"), _row(dice, subset, "R")
        if tl2 and r and tl2["LV"] == tl2["LV"] and r["LV"] == r["LV"]:
            both.append((subset, float(tl2["LV"]), float(r["LV"])))
    small = [b for b in both if b[0] != "full"]
    if not small:
        return None
    # the smallest training set (later in SUBSET_ORDER when the task list is gone)
    subset, tl2, r = min(small, key=lambda b: (sizes.get(b[0], 0), -SUBSET_ORDER.index(b[0])
                                               if b[0] in SUBSET_ORDER else 0))
    ahead = sum(t >= q for _, t, q in both)
    a, b = _images(folder, f"{subset}-TL2"), _images(folder, f"{subset}-R")
    sd, n = None, None
    if a is not None and b is not None:
        paired = a.merge(b, on="file", suffixes=("_tl2", "_r"))
        n = len(paired)
        if n > 1:
            sd = float((paired.dice_lv_tl2 - paired.dice_lv_r).std())
    stats = paired_comparison(folder, "TL2", "R", subset=subset, region="LV")
    verdict = (f"TL2 ahead on {ahead} of {len(both)} subsets" if ahead == len(both)
               else f"TL2 behind on {len(both) - ahead} of {len(both)} subsets, unlike the paper")
    return Headline(
        key="transfer.tl2_minus_r", label=f"TL2 − R: test Dice LV, subset {subset}",
        short=f"TL2 − R Dice LV ({subset})", value=tl2 - r, decimals=3, n=n,
        n_unit="test images", spread=sd, spread_label="sd (paired)",
        published_text="TL2 ahead on every subset", published_short="TL2 ahead",
        verdict=verdict,
        detail=f"TL2 {tl2:.3f}, R {r:.3f}. "
               + clear_of_zero(stats.ci if stats else None, "TL2 − R")
               + " The paper: TL2 stays at or above .91 / .79 on every subset, while subsets of "
                 "few volunteers hurt R and TL.",
        ci=stats.ci if stats else None, stats_of="TL2 − R" if stats else "",
        p_value=stats.p_value if stats else None,
        source=f"{rel}: models TL2-{subset} and R-{subset}, column LV")


def _dice_evidence(folder: Path, dice: pd.DataFrame) -> list[Evidence]:
    import pandas as pd

    runs = dice[dice.init.isin(["R", "TL", "TL2"]) & (dice.reference == "observer1")]
    subsets = [s for s in SUBSET_ORDER if s in set(runs.subset)] + \
        [s for s in dict.fromkeys(runs.subset) if s not in SUBSET_ORDER]
    rows = []
    for init in ("R", "TL", "TL2"):
        row: dict = {("init", ""): init}
        for subset in subsets:
            r = _row(runs, subset, init)
            for cls in ("LV", "MY"):
                if r is not None and r[cls] != r[cls] and r.get("note"):
                    row[(subset, cls)] = "not run"
                else:
                    row[(subset, cls)] = float(r[cls]) if r is not None else None
        rows.append(row)
    pivot = pd.DataFrame(rows)
    pivot.columns = pd.MultiIndex.from_tuples(pivot.columns)
    notes = dice[dice.note.fillna("").astype(str) != ""]
    caption = ("Mean per-image test Dice against observer 1, by initialisation (rows) and "
               "training subset (columns). Published (full set): TL2 .900 / .791, TL .908 / "
               ".791, R .880 / .756.")
    if len(notes):
        caption += " Not run: " + "; ".join(f"{m} ({n})" for m, n in zip(notes.model, notes.note)) + "."
    refs = dice[~dice.index.isin(runs.index)].copy()
    refs["published LV"] = [PUBLISHED.get(m, (None, None))[0] for m in refs.model]
    refs["published MY"] = [PUBLISHED.get(m, (None, None))[1] for m in refs.model]
    refs = refs[["model", "reference", "LV", "MY", "published LV", "published MY", "note"]]
    figs = folder / "figures"
    every = extra_columns(dice, folder / "dice_table.csv", DICE_COLUMNS, "Test Dice table")
    return [
        Evidence(title="Test Dice by training subset and initialisation", table=pivot,
                 csv=folder / "dice_table.csv", decimals={"LV": 3, "MY": 3}, caption=caption,
                 figures=[Figure(path=figs / "data_requirement.png",
                                 caption="Test Dice LV and MY per subset and initialisation; "
                                         "base model and observer 2 as lines")]),
        Evidence(title="Reference rows: base model and observers", table=refs,
                 decimals={c: 3 for c in ("LV", "MY", "published LV", "published MY")},
                 caption="The base model before transfer, observer 2 against observer 1, and "
                         "TL2 against observer 2 (the interobserver reference)."),
        *every,
    ]


def _other_evidence(folder: Path, root: Path) -> list[Evidence]:
    import pandas as pd

    out = []
    vol = folder / "volume_table.csv"
    vt = read_csv(vol) if vol.is_file() else None
    if vt is not None:
        names = {"method": "model", "edv_diff_pct": "EDV (%)", "esv_diff_pct": "ESV (%)",
                 "sv_diff_pct": "SV (%)", "ef_diff_pct": "EF (%)", "note": "note"}
        vt = vt[[c for c in names if c in vt.columns]].rename(columns=names)
        published = pd.DataFrame([
            {"model": "published: observer 2", "EDV (%)": 4.8, "ESV (%)": 6.6, "SV (%)": 9.0,
             "EF (%)": 6.0},
            {"model": "published: TL2", "EDV (%)": 6.4, "ESV (%)": 10.5, "SV (%)": 17.4,
             "EF (%)": 11.2}])
        out.append(Evidence(
            title="Volume differences against observer 1", table=pd.concat([vt, published]),
            csv=vol, decimals={c: 1 for c in ("EDV (%)", "ESV (%)", "SV (%)", "EF (%)")},
            covers=[folder / "volumes_per_volunteer.csv"],
            caption="Mean over test volunteers of |volume − observer 1's| / observer 1's, in %."))
    logs_path = folder / "training_logs.csv"
    logs = read_csv(logs_path) if logs_path.is_file() else None
    if logs is not None and len(logs):
        last = logs.sort_values("epoch").groupby("model", sort=False).tail(1)
        final = pd.DataFrame({
            "model": last.model, "epochs": last.epoch + 1, "images seen": last.images_seen,
            "validation Dice LV": last.diceLV, "validation Dice MY": last.diceMY,
            "validation loss": last.valid_loss,
            "minutes": logs.groupby("model", sort=False).time.sum().reindex(last.model).to_numpy() / 60})
        out.append(Evidence(
            title="Training runs: last epoch", table=final, csv=logs_path,
            covers=sorted((root / "tasks").glob("*/history.csv")),
            decimals={"validation Dice LV": 3, "validation Dice MY": 3, "minutes": 1},
            caption="Each (subset, init) task at its last epoch; the CSV has every epoch in "
                    "the published columns.",
            figures=[Figure(path=folder / "figures" / "validation_curves.png",
                            caption="Validation Dice against images seen, per subset "
                                    "(LV solid, MY dashed)")]))
    conf = folder / "confusion.csv"
    if conf.is_file():
        out.append(Evidence(title="Confusion tables", csv=conf,
                            caption="One row per test image and method pair: bg/lv/my counts "
                                    "of the reference (rows) against the method (columns)."))
    subsets = find_files(root, "image_subsets.csv")
    if subsets:
        s = read_csv(subsets[0])
        if s is not None:
            cols = [c for c in s.columns if s[c].dtype == bool]
            rows = [{"subset": c, "images": int(s[c].sum()),
                     "volunteers": int(s.loc[s[c], "Id"].nunique()),
                     "published images": PUBLISHED_IMAGES.get(c)}
                    for c in cols]
            esed = subsets[0].parent / "esed_frames.csv"
            out.append(Evidence(
                title="Training subsets", table=pd.DataFrame(rows), csv=subsets[0],
                covers=[esed] if esed.is_file() else [],
                caption="v7 ⊃ v3 ⊃ v1: volunteers; r7, r3, r1: the same numbers of random "
                        "images; esed: the ED and ES frames; r_esed: as many random images."))
    split = root / "data" / "split.csv"
    sp = read_csv(split) if split.is_file() else None
    if sp is not None and {"Id", "split"} <= set(sp.columns):
        counts = (sp.groupby("split", sort=False).Id.agg(["count", lambda ids: ", ".join(
            sorted(map(str, ids), key=lambda i: (len(i), i)))]).reset_index())
        counts.columns = ["split", "volunteers", "ids"]
        data = root / "data"
        covers = [p for p in sorted(data.rglob("*.csv"))
                  if p.parent.name in ("labels", "stage") and "views" not in p.parts]
        out.append(Evidence(
            title="Volunteers per split", table=counts, csv=split, id_columns=["ids"],
            covers=covers,
            caption="Test: the volunteers a second observer labelled (published: 3 test, 5 "
                    "validation, 14 training volunteers). The other files are the ingest's "
                    "truth volumes, label sets and contour issues, for both observers."))
    return out


def transfer_findings(run: Path) -> list[StudyFindings]:
    """The transfer study's findings in ``run`` (one per transfer evaluation folder)."""
    run = Path(run).resolve()
    found = []
    for path in find_files(run, "dice_table.csv"):
        dice = read_csv(path)
        if dice is None or not DICE_COLUMNS - {"note"} <= set(dice.columns):
            continue
        folder = path.parent
        root = folder.parent if (folder.parent / "tasks.json").is_file() else folder
        rel = path.relative_to(run).as_posix()
        dice["note"] = dice["note"] if "note" in dice.columns else ""
        dice["subset"] = dice.subset.fillna("").astype(str)
        context = _context(root)
        heads = [h for h in (_full_headline(dice, folder, rel, "TL2"),
                             _full_headline(dice, folder, rel, "R"),
                             _full_headline(dice, folder, rel, "TL"),
                             _subset_headline(dice, folder, rel, _subset_sizes(root)))
                 if h is not None]
        notes = []
        if (run / ".stages" / "synth_7t.json").is_file():
            notes.append("Data: a synthetic 7T-like cohort made by this run (synth_7t); the "
                         "numbers show what the pipeline does, not the published result.")
        if context:
            notes.append(context)
        i = len(found)
        found.append(StudyFindings(
            key="transfer" if i == 0 else f"transfer-{i + 1}",
            title=TITLE if i == 0 else f"{TITLE} ({folder.relative_to(run).as_posix()})",
            reference=REFERENCE, folder=root, headlines=heads,
            key_figure=Figure(path=folder / "figures" / "data_requirement.png",
                              caption="Test Dice per subset and initialisation"),
            evidence=_dice_evidence(folder, dice) + _other_evidence(folder, root), notes=notes))
    return found
