"""Rewrite a generated cine cohort into the shapes real data arrive in (re-layout).

The generator writes the project's own tree (``{split}/<pid>/study/sax_*/IM-*.dcm``, explicit VR
little endian, one file per image). Real data come as:

- ``kaggle``: the Kaggle download as it unzips, split folder twice
  (``{split}/{split}/<pid>/study/sax_*/``);
- ``flat``: a folder of patient folders, no split (``<pid>/study/sax_*/``);
- ``export``: a scanner/PACS export: a DICOMDIR at the top and ``PT*/ST*/SE*/IM*`` files with no
  ``sax_`` names (pydicom's File-set layout). With ``exam`` (the default) each patient is a
  realistic cardiac exam with the header habits of a vendor (:mod:`.vendors`): localiser, the
  cines (the short-axis one as one series per slice or one multi-slice series, as the vendor
  writes it, or as ``sax_series`` says), perfusion, flow, MOLLI and its T1 map, LGE, a real-time
  cine, a secondary capture and a PDF document (:mod:`.exam`); without it, the cines and a
  localiser series only;

in any transfer syntax and as enhanced multi-frame MR (:mod:`.reencode`). The cine pixels are
never changed: every variant holds the same cine images, bit for bit, as the original, which is
what the ingest tests compare against.

This is a post-processing step over a finished cohort, so the generator itself stays unaware
of it. Files the original holds that are not readable images (the ``not_dicom`` and
``truncated_file`` quirks) are copied byte for byte, to the same relative place.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from hpc_seg.cardiac.dicom.frame import FRAME_KEY
from hpc_seg.cardiac.synth import exam as E
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.reencode import (TRANSFER_SYNTAXES, encode_as, multiframe_series,
                                            save)
from hpc_seg.cardiac.synth.vendors import VENDOR_PROFILES, VendorProfile, profile
from hpc_seg.errors import ConfigError, OutputError

log = logging.getLogger(__name__)

LAYOUTS = ("project", "kaggle", "flat", "export")
SPLITS = ("train", "validate", "test")
#: how an export writes the short-axis cine: as its vendor does, one series per slice, or one
SAX_SERIES = ("vendor", "per-slice", "single")
Image = tuple[Dataset, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class VariantOptions:
    """Which variant to write."""

    layout: str = "project"
    transfer_syntax: str = "explicit"
    multiframe: bool = False
    exam: bool = True              # export layout: the whole cardiac exam, not only the cines
    localisers: bool = True        # export layout: a 3-plane localiser series per patient
    vendor: str | None = None      # export: header habits of this vendor (default: the patient's)
    sax_series: str = "vendor"     # export: see SAX_SERIES

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout: must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ConfigError(f"transfer_syntax: must be one of {', '.join(TRANSFER_SYNTAXES)}, "
                              f"got {self.transfer_syntax!r}")
        if self.vendor is not None and self.vendor not in VENDOR_PROFILES:
            raise ConfigError(f"vendor: must be one of {', '.join(VENDOR_PROFILES)}, "
                              f"got {self.vendor!r}")
        if self.sax_series not in SAX_SERIES:
            raise ConfigError(f"sax_series: must be one of {', '.join(SAX_SERIES)}, "
                              f"got {self.sax_series!r}")
        if self.layout != "export" and (self.vendor or self.sax_series != "vendor" or not self.exam):
            raise ConfigError(f"vendor, sax_series and exam shape a scanner export: they need "
                              f"layout export, not {self.layout!r}")

    @property
    def is_identity(self) -> bool:
        return (self.layout, self.transfer_syntax, self.multiframe) == ("project", "explicit", False)


def _read_series(folder: Path) -> tuple[list[tuple[Dataset, np.ndarray]], list[Path]]:
    """(dataset, pixels) of every decodable image of a series folder; other files listed.

    Each dataset remembers its file name in ``ds.filename`` (pydicom sets it)."""
    images, other = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
            images.append((ds, ds.pixel_array.copy()))
        except Exception:  # junk or truncated on purpose: the variant keeps it as it is
            other.append(path)
    return images, other


def project_patients(src: Path) -> list[tuple[str, str, Path]]:
    """(split, pid, patient folder) of a cohort in the project's own layout."""
    found = []
    for split in SPLITS:
        if (src / split).is_dir():
            found += [(split, p.name, p) for p in sorted((src / split).iterdir())
                      if p.is_dir() and not p.name.startswith(".")]
    return found


def _patient_dir(out: Path, layout: str, split: str, pid: str) -> Path:
    return {"project": out / split / pid, "kaggle": out / split / split / pid,
            "flat": out / pid}[layout]


def _variant_images(images: list[tuple[Dataset, np.ndarray]], opts: VariantOptions,
                    ) -> list[tuple[Dataset, np.ndarray, str | None]]:
    """The series' images as the variant writes them: (dataset, pixels, file name or None)."""
    if opts.multiframe and images:
        ds, px = multiframe_series(images)
        return [(ds, px, f"IM-{int(ds.SeriesNumber):04d}-multiframe.dcm")]
    return [(ds, px, None) for ds, px in images]


def rewrite_masks(src: Path, out: Path, renames: dict[str, dict[str, str]]) -> None:
    """Copy ``masks/`` and ``truth_masks/``, re-keying entries of images merged into
    multi-frame files (old SOP UID → per-frame key) so masks still find their frames."""
    for folder in ("masks", "truth_masks"):
        if not (src / folder).is_dir():
            continue
        (out / folder).mkdir(parents=True, exist_ok=True)
        for path in sorted((src / folder).glob("*.npz")):
            ren = renames.get(path.stem, {})
            if not ren:
                shutil.copy2(path, out / folder / path.name)
                continue
            with np.load(path) as z:
                arrays = {ren.get(k, k): z[k] for k in z.files}
            np.savez_compressed(out / folder / path.name, **arrays)


def _add_to_fileset(fileset: FileSet, ds: Dataset) -> None:
    # A DICOMDIR's STUDY record requires StudyID, which the generator does not write.
    if not ds.get("StudyID"):
        ds.StudyID = "1"
    fileset.add(ds)


def _position(ds: Dataset) -> float:
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    return float(np.asarray([float(v) for v in ds.ImagePositionPatient]) @ np.cross(iop[:3], iop[3:]))


def _rr_ms(src: Path, pid: str, sax: list[list[Image]]) -> float:
    """The patient's R-R interval: from the manifest's heart rate, else from trigger times."""
    try:
        hr = json.loads((src / "manifest.json").read_text())["patients"][pid]["model"]["heart_rate_bpm"]
        return 60000.0 / float(hr)
    except (OSError, ValueError, KeyError, TypeError):
        images = max(sax, key=len)
        times = sorted(float(ds.TriggerTime) for ds, _px in images)
        return (times[1] - times[0]) * len(times) if len(times) > 1 else 1000.0


def _exam_patient(src: Path, pid: str, folders: list[tuple[Path, list[Image]]],
                  vendor: VendorProfile, sax_series: str) -> tuple[list[list[Image]], list[Dataset]]:
    """The series of one patient's export as a ``vendor`` scanner writes them: the cines with
    the vendor's habits (the short-axis one merged into one series where asked), then the
    exam's other MR series; and the non-MR objects (a secondary capture, a document)."""
    sax = [images for folder, images in folders if folder.name.startswith("sax_") and images]
    other = [images for folder, images in folders if not folder.name.startswith("sax_") and images]
    rr = _rr_ms(src, pid, sax) if sax else 1000.0
    for images in sax + other:
        E.cine_habits(images, vendor, rr)
    # The first acquisition: one series per position (a complete repeat's folders come later).
    seen: set[float] = set()
    first, repeats = [], []
    for images in sax:
        pos = round(_position(images[0][0]), 1)
        (repeats if pos in seen else first).append(images)
        seen.add(pos)
    single = sax_series == "single" or (sax_series == "vendor" and not vendor.sax_per_slice)
    series = ([E.merge_sax(first, str(first[0][0][0].StudyInstanceUID))] if single and first
              else first) + repeats + other
    if not first:
        return series, []
    slices = sorted((E.SaxSlice(_position(images[0][0]), sorted(
        images, key=lambda i: float(i[0].get("TriggerTime", 0) or 0))) for images in first),
        key=lambda s: s.position)
    template = first[0][0][0]
    return series + E.exam_series(slices, vendor, rr), [E.secondary_capture(template),
                                                        E.protocol_document(template)]


def rewrite_cohort(src: Path, out: Path, opts: VariantOptions) -> Path:
    """Write the variant ``opts`` of the project-layout cohort ``src`` into ``out`` (new or
    empty). Top-level files (truth.csv, manifest.json) are copied, masks re-keyed for
    multi-frame files; returns ``out``. The export layout holds the cohort in memory until
    pydicom's File-set writes it (sized for test cohorts)."""
    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise OutputError(f"{out}: exists and is not empty; pick another folder")
    patients = project_patients(src)
    if not patients:
        raise ConfigError(f"{src}: no {{train,validate,test}}/<pid> folders to rewrite")
    out.mkdir(parents=True, exist_ok=True)
    fileset = FileSet() if opts.layout == "export" else None
    renames: dict[str, dict[str, str]] = {}
    for split, pid, pdir in patients:
        folders, junk = [], []
        for folder in sorted(p for p in (pdir / "study").iterdir() if p.is_dir()):
            images, other = _read_series(folder)
            folders.append((folder, images))
            junk += [(folder, path) for path in other]
        first_image = next((images[0] for _f, images in folders if images), None)
        if fileset is not None and opts.exam:
            vendor = profile(opts.vendor, str(first_image[0].get("Manufacturer", "")) if first_image
                             else "")
            series, objects = _exam_patient(src, pid, folders, vendor, opts.sax_series)
        else:
            series, objects = [images for _f, images in folders if images], []
        for images in series:
            _write_series(images, opts, fileset, out, split, pid, pdir, renames)
        for ds in objects:            # written as the scanner writes them: explicit VR LE
            _add_to_fileset(fileset, ds)
        for folder, path in junk:
            dest = (out / "junk" / pid if fileset is not None
                    else _patient_dir(out, opts.layout, split, pid) / folder.relative_to(pdir))
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.name)
        if fileset is not None and opts.localisers and first_image is not None:
            for ds in E.localiser_series(first_image[0], first_image[1]):
                encode_as(ds, first_image[1], opts.transfer_syntax)
                _add_to_fileset(fileset, ds)
    if fileset is not None:
        fileset.write(out)
    for name in ("truth.csv", "manifest.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    rewrite_masks(src, out, renames)
    log.info("wrote the %s layout, %s, %s of %d patients to %s", opts.layout,
             opts.transfer_syntax, "multi-frame" if opts.multiframe else "single-frame",
             len(patients), out)
    return out


def _write_series(images: list[Image], opts: VariantOptions, fileset: FileSet | None, out: Path,
                  split: str, pid: str, pdir: Path, renames: dict[str, dict[str, str]]) -> None:
    """Encode one series' images as the variant asks and add them to the File-set (export) or
    write them to their folder (the other layouts)."""
    folder = Path(getattr(images[0][0], "filename", "") or pdir / "study").parent
    for ds, px, name in _variant_images(images, opts):
        if opts.multiframe:
            renames.setdefault(pid, {}).update({
                str(img.SOPInstanceUID): FRAME_KEY.format(base=ds.SOPInstanceUID, frame=n)
                for n, (img, _p) in enumerate(sorted(
                    images, key=lambda i: int(i[0].InstanceNumber)), start=1)})
        encode_as(ds, px, opts.transfer_syntax)
        if fileset is not None:
            _add_to_fileset(fileset, ds)
        else:
            rel = folder.relative_to(pdir) / (name or Path(ds.filename).name)
            save(ds, _patient_dir(out, opts.layout, split, pid) / rel)


def generate_variant(out: Path, n_patients: int, seed: int, config: CineSynthConfig,
                     opts: VariantOptions, *, overwrite: bool = False) -> Path:
    """Generate a cohort and write it as the variant ``opts`` into ``out``; returns ``out``.

    The project tree is generated next to ``out`` (``.<name>.project``, resumable like any
    generation), rewritten, then removed.
    """
    from hpc_seg.cardiac.synth.cohort import generate_cine_cohort

    out = Path(out)
    if opts.is_identity:
        generate_cine_cohort(out, n_patients, seed, config, overwrite=overwrite)
        return out
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputError(f"{out}: exists and is not empty; pick another OUT or --overwrite")
        shutil.rmtree(out)
    staging = out.parent / f".{out.name}.project"
    generate_cine_cohort(staging, n_patients, seed, config, overwrite=overwrite)
    try:
        rewrite_cohort(staging, out, opts)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)       # no half-written variant left behind
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return out
