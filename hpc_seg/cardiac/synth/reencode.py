"""Re-encode a generated image: another transfer syntax, or a series as one enhanced MR file.

Every encoding here is lossless: the pixels a reader decodes are the generator's, bit for bit,
which is what the ingest tests compare against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom import uid as U

from hpc_seg.cardiac.synth.dicom import make_uid
from hpc_seg.cardiac.synth.jpeg_lossless import encode_frame

#: --transfer-syntax names → UIDs (all lossless: the pixels must survive bit for bit)
TRANSFER_SYNTAXES: dict[str, str] = {
    "explicit": U.ExplicitVRLittleEndian, "implicit": U.ImplicitVRLittleEndian,
    "big-endian": U.ExplicitVRBigEndian, "deflate": U.DeflatedExplicitVRLittleEndian,
    "rle": U.RLELossless, "jpeg-lossless": U.JPEGLosslessSV1, "jpeg-ls": U.JPEGLSLossless,
    "jpeg2000": U.JPEG2000Lossless,
}


def encode_as(ds: Dataset, pixels: np.ndarray, syntax: str) -> None:
    """Set ``ds``'s pixel data (all frames in ``pixels``) and transfer syntax to ``syntax``."""
    ts = U.UID(TRANSFER_SYNTAXES[syntax])
    if pixels.ndim == 3 and pixels.shape[0] == 1:      # one frame: the encoders want 2D
        pixels = pixels[0]
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


def _is_phase(img: Dataset) -> bool:
    """A phase (velocity) image: its ImageType says so, or GE's private image kind is 1."""
    kind = img.get((0x0043, 0x102F))
    return bool({"P", "PHASE", "VELOCITY MAP"} & {str(t) for t in img.get("ImageType", [])}) or \
        (kind is not None and int(kind.value) == 1)


def multiframe_series(images: list[tuple[Dataset, np.ndarray]]) -> tuple[Dataset, np.ndarray]:
    """One enhanced MR image of a series' single-frame images (sorted by InstanceNumber).

    Geometry and timing move into the functional groups as the standard puts them: pixel
    spacing and orientation shared; position, trigger delay, R-R interval, image type,
    inversion and echo time and acquisition time per frame (where the images have them).
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
            "BitsStored", "HighBit", "PixelRepresentation", "HeartRate", "NominalInterval",
            "TriggerSourceOrType", "ScanningSequence", "SequenceVariant", "ScanOptions")
    for key in keep:
        if key in first:
            setattr(ds, key, first.data_element(key).value)
    if "SequenceName" in first:         # the enhanced objects' name for it
        ds.PulseSequenceName = first.SequenceName
    if "NominalInterval" in first or "TriggerSourceOrType" in first:
        ds.CardiacSynchronizationTechnique = "RETROSPECTIVE"
    sop = make_uid("multiframe", first.SeriesInstanceUID)
    ds.SOPClassUID = U.EnhancedMRImageStorage
    ds.SOPInstanceUID = sop
    ds.InstanceNumber = 1
    ds.ImageType = list(first.get("ImageType") or ["ORIGINAL", "PRIMARY", "M", "NONE"])
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
        if "TriggerTime" in img:
            sync = Dataset()
            sync.NominalCardiacTriggerDelayTime = img.TriggerTime
            if "NominalInterval" in img:
                sync.RRIntervalTimeNominal = img.NominalInterval
            item.CardiacSynchronizationSequence = Sequence([sync])
        content = Dataset()
        content.TemporalPositionIndex = n
        content.FrameAcquisitionNumber = int(img.InstanceNumber)
        if "AcquisitionTime" in img and "StudyDate" in img:
            content.FrameAcquisitionDateTime = f"{img.StudyDate}{img.AcquisitionTime}"
        item.FrameContentSequence = Sequence([content])
        if "ImageType" in img:
            ftype = Dataset()
            ftype.FrameType = list(img.ImageType)
            ftype.ComplexImageComponent = "PHASE" if _is_phase(img) else "MAGNITUDE"
            item.MRImageFrameTypeSequence = Sequence([ftype])
        if "EchoTime" in img:
            echo = Dataset()
            echo.EffectiveEchoTime = float(img.EchoTime)
            item.MREchoSequence = Sequence([echo])
        if "InversionTime" in img:
            modifier = Dataset()
            modifier.InversionTimes = [float(img.InversionTime)]
            item.MRModifierSequence = Sequence([modifier])
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
