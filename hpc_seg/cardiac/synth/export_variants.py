"""Rewrite a generated cine cohort into the shapes real data arrive in.

The generator writes the project's own tree (``{split}/<pid>/study/sax_*/IM-*.dcm``, explicit VR
little endian, one file per image). Real data come as:

- ``kaggle``: the Kaggle download as it unzips, split folder twice
  (``{split}/{split}/<pid>/study/sax_*/``);
- ``flat``: a folder of patient folders, no split (``<pid>/study/sax_*/``);
- ``export``: a scanner/PACS export: a DICOMDIR at the top and ``PT*/ST*/SE*/IM*`` files with no
  ``sax_`` names (pydicom's File-set layout), plus a localiser series per patient;

in any transfer syntax (``--transfer-syntax``), and as enhanced multi-frame MR, one file per
series (``--multiframe``). Pixels are never changed: every variant holds the same images,
bit for bit, as the original, which is what the ingest tests compare against.

This is a post-processing step over a finished cohort, so the generator itself stays unaware
of it. Files the original holds that are not readable images (the ``not_dicom`` and
``truncated_file`` quirks) are copied byte for byte, to the same relative place.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence
from pydicom import uid as U

from hpc_seg.cardiac.dicom.frame import FRAME_KEY
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.dicom import make_uid
from hpc_seg.cardiac.synth.jpeg_lossless import encode_frame
from hpc_seg.errors import ConfigError, OutputError

log = logging.getLogger(__name__)

LAYOUTS = ("project", "kaggle", "flat", "export")
SPLITS = ("train", "validate", "test")
#: --transfer-syntax names → UIDs (all lossless: the pixels must survive bit for bit)
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": U.ExplicitVRLittleEndian, "implicit": U.ImplicitVRLittleEndian,
    "big-endian": U.ExplicitVRBigEndian, "deflate": U.DeflatedExplicitVRLittleEndian,
    "rle": U.RLELossless, "jpeg-lossless": U.JPEGLosslessSV1, "jpeg-ls": U.JPEGLSLossless,
    "jpeg2000": U.JPEG2000Lossless,
}


@dataclass(frozen=True, kw_only=True)
class VariantOptions:
    """Which variant to write."""

    layout: str = "project"
    transfer_syntax: str = "explicit"
    multiframe: bool = False
    localisers: bool = True        # export layout: a 3-plane localiser series per patient

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout: must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.transfer_syntax not in TRANSFER_SYNTAXES:
            raise ConfigError(f"transfer_syntax: must be one of {', '.join(TRANSFER_SYNTAXES)}, "
                              f"got {self.transfer_syntax!r}")

    @property
    def is_identity(self) -> bool:
        return (self.layout, self.transfer_syntax, self.multiframe) == ("project", "explicit", False)


def encode_as(ds: Dataset, pixels: np.ndarray, syntax: str) -> None:
    """Set ``ds``'s pixel data (all frames in ``pixels``) and transfer syntax to ``syntax``."""
    ts = U.UID(TRANSFER_SYNTAXES[syntax])
    frames = pixels.reshape(-1, *pixels.shape[-2:])
    if ts == U.JPEGLosslessSV1:
        ds.PixelData = encapsulate([encode_frame(f, int(ds.BitsStored)) for f in frames])
        ds.file_meta.TransferSyntaxUID = ts
        ds["PixelData"].VR = "OB"
    elif ts.is_compressed:
        ds.compress(ts, pixels, generate_instance_uid=False)
    else:
        order = ">" if ts == U.ExplicitVRBigEndian else "<"
        ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder(order)).tobytes()
        ds["PixelData"].VR = "OW"
        ds.file_meta.TransferSyntaxUID = ts


def save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` in its file meta's transfer syntax (big endian needs a forced encoding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if ds.file_meta.TransferSyntaxUID == U.ExplicitVRBigEndian:
        pydicom.dcmwrite(path, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    else:
        ds.save_as(path, enforce_file_format=True)


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


def multiframe_series(images: list[tuple[Dataset, np.ndarray]]) -> tuple[Dataset, np.ndarray]:
    """One enhanced MR image of a series' single-frame images (sorted by InstanceNumber).

    Geometry and timing move into the functional groups as the standard puts them: pixel
    spacing and orientation shared, position and trigger delay per frame.
    """
    images = sorted(images, key=lambda item: int(item[0].InstanceNumber))
    first = images[0][0]
    ds = Dataset()
    keep = ("PatientName", "PatientID", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
            "StudyDescription", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
            "SeriesDescription", "SeriesTime", "AcquisitionTime", "ContentTime", "Modality",
            "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength", "RepetitionTime",
            "EchoTime", "FlipAngle", "CardiacNumberOfImages", "FrameOfReferenceUID", "Rows",
            "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
            "BitsStored", "HighBit", "PixelRepresentation")
    for key in keep:
        if key in first:
            setattr(ds, key, first.data_element(key).value)
    sop = make_uid("multiframe", first.SeriesInstanceUID)
    ds.SOPClassUID = U.EnhancedMRImageStorage
    ds.SOPInstanceUID = sop
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(images)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.SliceThickness
    shared.PixelMeasuresSequence = Sequence([measures])
    orient = Dataset()
    orient.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PlaneOrientationSequence = Sequence([orient])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for n, (img, _px) in enumerate(images, start=1):
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = img.ImagePositionPatient
        item.PlanePositionSequence = Sequence([pos])
        sync = Dataset()
        sync.NominalCardiacTriggerDelayTime = img.TriggerTime
        item.CardiacSynchronizationSequence = Sequence([sync])
        content = Dataset()
        content.TemporalPositionIndex = n
        content.FrameAcquisitionNumber = int(img.InstanceNumber)
        item.FrameContentSequence = Sequence([content])
        if tuple(img.ImageOrientationPatient) != tuple(first.ImageOrientationPatient):
            o = Dataset()
            o.ImageOrientationPatient = img.ImageOrientationPatient
            item.PlaneOrientationSequence = Sequence([o])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = U.EnhancedMRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = U.ExplicitVRLittleEndian
    return ds, np.stack([px for _ds, px in images])


def localiser_series(template: Dataset, pixels: np.ndarray) -> list[Dataset]:
    """Three single-frame localiser images (axial, coronal, sagittal) in a series of their own."""
    out = []
    for n, iop in enumerate(([1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1], [0, 1, 0, 0, 0, -1]), 1):
        ds = Dataset()
        for key in ("PatientName", "PatientID", "PatientSex", "PatientAge", "StudyDate",
                    "StudyTime", "StudyDescription", "StudyInstanceUID", "Modality",
                    "Manufacturer", "FrameOfReferenceUID", "Rows", "Columns", "SamplesPerPixel",
                    "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "PixelSpacing", "SliceThickness"):
            if key in template:
                setattr(ds, key, template.data_element(key).value)
        sop = make_uid("localiser", template.StudyInstanceUID, n)
        ds.SOPClassUID, ds.SOPInstanceUID = U.MRImageStorage, sop
        ds.SeriesInstanceUID = make_uid("localiser", template.StudyInstanceUID)
        ds.SeriesNumber, ds.SeriesDescription = 1, "localizer"
        ds.SeriesTime = "080000.000000"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.InstanceNumber = n
        ds.ImagePositionPatient = [-150.0, -150.0, 0.0]
        ds.ImageOrientationPatient = iop
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = U.MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = U.ExplicitVRLittleEndian
        ds.PixelData = pixels.astype("<u2").tobytes()
        out.append(ds)
    return out


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
        first_image: tuple[Dataset, np.ndarray] | None = None
        for series in sorted(p for p in (pdir / "study").iterdir() if p.is_dir()):
            images, other = _read_series(series)
            first_image = first_image or (images[0] if images else None)
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
                    rel = series.relative_to(pdir) / (name or Path(ds.filename).name)
                    save(ds, _patient_dir(out, opts.layout, split, pid) / rel)
            for path in other:
                dest = (out / "junk" / pid if fileset is not None
                        else _patient_dir(out, opts.layout, split, pid) / series.relative_to(pdir))
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / path.name)
        if fileset is not None and opts.localisers and first_image is not None:
            for ds in localiser_series(first_image[0], first_image[1]):
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
