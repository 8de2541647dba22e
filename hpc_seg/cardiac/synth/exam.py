"""The series of a realistic cardiac MR exam around a generated short-axis cine.

A scanner export of a cardiac exam holds, besides the localiser and the cines: a first-pass
perfusion series (3 short-axis slices x :data:`PERFUSION_DYNAMICS` heartbeats, one trigger delay
per slice), phase-contrast flow above the valve plane (magnitude and phase, retrospectively
gated), MOLLI (8 images at one slice with their inversion times) and its T1 map, late gadolinium
enhancement (one inversion-recovery image per short-axis position, with PSIR), a real-time
(ungated) cine, a secondary capture (an RGB screenshot) and a PDF document. :func:`exam_series`
writes them from the cine's own images and geometry, with the header habits of a
:class:`~hpc_seg.cardiac.synth.vendors.VendorProfile`; :func:`cine_habits` gives the cine and
long-axis images that vendor's headers, and :func:`merge_sax` makes one multi-slice series of a
cine written one series per slice. None of the pixels matter to a reader that picks the cine;
only the headers do, so the pixels are cheap transforms of the cine's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom import uid as U

from hpc_seg.cardiac.synth.dicom import make_uid
from hpc_seg.cardiac.synth.vendors import VendorProfile

Image = tuple[Dataset, np.ndarray]
PERFUSION_DYNAMICS = 40
REALTIME_IMAGES = 24            # per position, REALTIME_STEP_MS apart: about one heartbeat
REALTIME_STEP_MS = 48.0
FLOW_PHASES = 20
FLOW_ABOVE_BASE_MM = 30.0       # the flow plane sits this far above the basal slice
LGE_TI_MS = 300.0
MOLLI_TI_MS = (100.0, 180.0)    # first inversion time of each of the two MOLLI inversions
MOLLI_IMAGES = (5, 3)           # images after each inversion (MOLLI 5(3)3)
MYOCARDIUM_T1_MS = 1000.0
#: where the exam series start (after the cines), one a minute
EXAM_START_S = 8 * 3600 + 30 * 60
GE_CREATOR = (0x0043, 0x0010)
GE_IMAGE_KIND = (0x0043, 0x102F)

#: header elements every image of the exam shares with the cine it was made from
_PATIENT_STUDY = ("PatientName", "PatientID", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
                  "StudyDescription", "StudyInstanceUID", "StudyID", "FrameOfReferenceUID",
                  "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength")
_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
             "SliceLocation", "Rows", "Columns")
_PIXEL_MODULE = ("SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                 "HighBit", "PixelRepresentation")
# A tiny valid PDF: the exam's protocol document.
_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
        b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n")


@dataclass
class SaxSlice:
    """One short-axis slice position of the cine: its frames in phase order."""

    position: float
    images: list[Image]


def _time(seconds: float) -> str:
    seconds = seconds % 86400
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    return f"{int(hh):02d}{int(mm):02d}{ss:09.6f}"


def _ds(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def gating(profile: VendorProfile, rr_ms: float, n_images: int) -> dict:
    """Header fields of an ECG-gated series."""
    out = {"NominalInterval": str(int(round(rr_ms))), "CardiacNumberOfImages": n_images,
           "TriggerSourceOrType": "ECG"}
    if profile.name != "siemens":
        out["HeartRate"] = str(int(round(60000.0 / rr_ms)))
    return out


def no_gating(profile: VendorProfile) -> dict:
    """Header fields of an ungated series, as the vendor writes them."""
    if profile.explicit_not_gated:
        return {"HeartRate": "0", "CardiacNumberOfImages": 0}
    if profile.heart_rate_always:
        return {"HeartRate": "60"}
    return {}


def _vendor_fields(ds: Dataset, profile: VendorProfile, kind: str, image_kind: int = 0) -> None:
    ds.Manufacturer, ds.ManufacturerModelName = profile.maker, profile.model
    ds.MagneticFieldStrength = profile.field_strength
    ds.ImageType = profile.image_type(kind)
    seq = profile.sequence_names.get(kind.split("_")[0])
    if seq:
        ds.SequenceName = seq
    if profile.private_image_kind:
        ds.add_new(GE_CREATOR, "LO", "GEMS_PARM_01")
        ds.add_new(GE_IMAGE_KIND, "SS", image_kind)


def cine_habits(images: list[Image], profile: VendorProfile, rr_ms: float) -> None:
    """Give a cine series' images (short or long axis) the vendor's cine headers, in place."""
    for ds, _px in images:
        _vendor_fields(ds, profile, "cine")
        ds.ScanningSequence, ds.SequenceVariant = "GR", "SS"
        for key, value in gating(profile, rr_ms, int(ds.get("CardiacNumberOfImages", 0))).items():
            setattr(ds, key, value)
        start = _seconds(ds.get("SeriesTime", ""))
        trigger = float(ds.get("TriggerTime", 0) or 0)
        ds.AcquisitionTime = _time(start + trigger / 1000.0) if profile.per_image_time \
            else _time(start)


def _seconds(text: str) -> float:
    text = str(text)
    try:
        return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + float(text[4:] or 0)
    except ValueError:
        return float(EXAM_START_S)


def merge_sax(slices: list[list[Image]], study_uid: str) -> list[Image]:
    """One multi-slice series of a cine written one series per slice (same images, renumbered;
    the series takes the first slice's number and time)."""
    first = slices[0][0][0]
    uid = make_uid("sax-single-series", study_uid)
    merged = []
    for ds, px in (img for images in slices for img in images):
        ds.SeriesInstanceUID, ds.SeriesNumber = uid, first.SeriesNumber
        ds.SeriesDescription = "CINE_segmented_SAX"
        ds.SeriesTime = first.SeriesTime
        ds.InstanceNumber = len(merged) + 1
        merged.append((ds, px))
    return merged


def _new_dataset(template: Dataset, keys: tuple[str, ...], sop_class: str, sop_uid: str,
                 ) -> Dataset:
    """A new object with ``keys`` copied from ``template``, its SOP identity and file meta."""
    ds = Dataset()
    for key in keys:
        if key in template:
            setattr(ds, key, template.data_element(key).value)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = U.ExplicitVRLittleEndian
    return ds


def _image(template: Dataset, geometry: Dataset, series: dict, number: int, pixels: np.ndarray,
           fields: dict) -> Image:
    """An MR image of a new series: patient and study of ``template``, plane of ``geometry``."""
    ds = _new_dataset(template, _PATIENT_STUDY + _PIXEL_MODULE, U.MRImageStorage,
                      make_uid("exam-image", series["SeriesInstanceUID"], number))
    for key in _GEOMETRY:
        if key in geometry:
            setattr(ds, key, geometry.data_element(key).value)
    ds.Modality = "MR"
    ds.InstanceNumber = number
    for key, value in {**series, **fields}.items():
        if value is not None:
            setattr(ds, key, value)
    return ds, np.clip(pixels, 0, (1 << int(template.BitsStored)) - 1).astype(np.uint16)


class _Exam:
    """Builds the exam's series one after another (numbers from 100, a minute apart)."""

    def __init__(self, sax: list[SaxSlice], profile: VendorProfile, rr_ms: float) -> None:
        self.sax, self.profile, self.rr = sax, profile, rr_ms
        self.template = sax[0].images[0][0]
        self.study = str(self.template.StudyInstanceUID)
        self.number = 99

    def series(self, kind: str, description: str) -> dict:
        self.number += 1
        return {"SeriesInstanceUID": make_uid("exam-series", self.study, kind),
                "SeriesNumber": self.number, "SeriesDescription": description,
                "SeriesTime": _time(EXAM_START_S + 60 * (self.number - 100))}

    def image(self, series: dict, kind: str, geometry: Dataset, number: int, pixels: np.ndarray,
              offset_ms: float, image_kind: int = 0, **fields) -> Image:
        start = _seconds(series["SeriesTime"])
        when = start + offset_ms / 1000.0 if self.profile.per_image_time else start
        ds, px = _image(self.template, geometry, series, number, pixels,
                        {"AcquisitionTime": _time(when), "ContentTime": _time(when), **fields})
        _vendor_fields(ds, self.profile, kind, image_kind)
        return ds, px

    def picks(self) -> list[SaxSlice]:
        """Basal, mid and apical slices."""
        n = len(self.sax)
        return [self.sax[i] for i in sorted({min(1, n - 1), n // 2, max(n - 2, 0)})]


def exam_series(sax: list[SaxSlice], profile: VendorProfile, rr_ms: float) -> list[list[Image]]:
    """The exam's other MR series, each a list of (dataset, pixels), from the cine's slices
    (sorted by position) at R-R interval ``rr_ms``."""
    exam = _Exam(sax, profile, rr_ms)
    return [_realtime(exam), _perfusion(exam), *_flow(exam), *_molli(exam), *_lge(exam)]


def _realtime(exam: _Exam) -> list[Image]:
    """Ungated cine at three positions, REALTIME_STEP_MS per image."""
    p = exam.profile
    series = exam.series("realtime", "RT_cine_SAX")
    out = []
    for k, sl in enumerate(exam.picks()):
        n_frames = len(sl.images)
        for i in range(REALTIME_IMAGES):
            t = (k * REALTIME_IMAGES + i) * REALTIME_STEP_MS
            frame = int((t % exam.rr) / exam.rr * n_frames) % n_frames
            geometry, px = sl.images[frame]
            fields = dict(no_gating(p))
            if p.trigger_holds_time:         # Philips, GE: the image's time, not a delay
                fields["TriggerTime"] = _ds(t)
            out.append(exam.image(series, "realtime", geometry, len(out) + 1, px, t, **fields))
    return out


def _perfusion(exam: _Exam) -> list[Image]:
    """First pass: one image per slice per heartbeat, each slice at its own trigger delay."""
    series = exam.series("perfusion", "PERF_SR_3slices")
    picks = exam.picks()
    out = []
    for d in range(PERFUSION_DYNAMICS):
        # contrast arrives after ~8 beats, peaks at ~14, washes out slowly (gamma-variate-like)
        x = max(0.0, d - 8.0)
        gain = 0.35 + 0.9 * (x / 6.0) ** 2 * math.exp(2.0 - x / 3.0) if x else 0.35
        for k, sl in enumerate(picks):
            geometry, px = sl.images[0]
            trigger = 40.0 + k * min(250.0, exam.rr / len(picks))
            out.append(exam.image(series, "perfusion", geometry, len(out) + 1,
                                  px.astype(np.float64) * gain, d * exam.rr + trigger,
                                  TriggerTime=_ds(trigger), InversionTime="95",
                                  **gating(exam.profile, exam.rr, 1)))
    return out


def _flow_plane(exam: _Exam, geometry: Dataset) -> Dataset:
    """A copy of ``geometry`` moved FLOW_ABOVE_BASE_MM along the slice normal (valve plane)."""
    plane = Dataset()
    for key in _GEOMETRY:
        if key in geometry:
            setattr(plane, key, geometry.data_element(key).value)
    iop = np.asarray([float(v) for v in geometry.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    ipp = np.asarray([float(v) for v in geometry.ImagePositionPatient]) + FLOW_ABOVE_BASE_MM * normal
    plane.ImagePositionPatient = [_ds(v) for v in ipp]
    plane.SliceLocation = _ds(float(ipp @ normal))
    return plane


def _flow(exam: _Exam) -> list[list[Image]]:
    """Retrospectively gated phase contrast through the valve plane: magnitude and phase."""
    p = exam.profile
    base = exam.sax[0]
    plane = _flow_plane(exam, base.images[0][0])
    mag_series = exam.series("flow", "flow_150_AoV")
    phase_series = mag_series if p.flow_one_series else exam.series("flow-phase", "flow_150_AoV_P")
    mags, phases = [], []
    n_frames = len(base.images)
    for i in range(FLOW_PHASES):
        trigger = i * exam.rr / FLOW_PHASES
        px = base.images[int(i * n_frames / FLOW_PHASES) % n_frames][1].astype(np.float64)
        velocity = 2048.0 + (px - px.mean()) * (0.4 * math.sin(2 * math.pi * i / FLOW_PHASES))
        gated = gating(p, exam.rr, FLOW_PHASES)
        mags.append(exam.image(mag_series, "flow_mag", plane, 2 * i + 1, px, trigger,
                               TriggerTime=_ds(trigger), **gated))
        phases.append(exam.image(phase_series, "flow_phase", plane, 2 * i + 2, velocity, trigger,
                                 image_kind=1, TriggerTime=_ds(trigger), **gated))
    return [mags + phases] if p.flow_one_series else [mags, phases]


def _molli_times(rr_ms: float) -> list[float]:
    return sorted(float(round(ti + k * rr_ms)) for ti, n in zip(MOLLI_TI_MS, MOLLI_IMAGES)
                  for k in range(n))


def _molli(exam: _Exam) -> list[list[Image]]:
    """MOLLI 5(3)3 at the mid slice (inversion time per image) and its T1 map."""
    mid = exam.sax[len(exam.sax) // 2]
    geometry, px = mid.images[0]
    series = exam.series("molli", "MOLLI_5(3)3_SAX_mid")
    trigger = _ds(0.75 * exam.rr)
    images = []
    for ti in _molli_times(exam.rr):
        signal = abs(1.0 - 2.0 * math.exp(-ti / MYOCARDIUM_T1_MS))
        images.append(exam.image(series, "molli", geometry, len(images) + 1,
                                 px.astype(np.float64) * signal, ti, TriggerTime=trigger,
                                 InversionTime=_ds(ti), **gating(exam.profile, exam.rr, 1)))
    map_series = exam.series("t1map", "MOLLI_5(3)3_SAX_mid_T1MAP")
    t1 = np.where(px > np.percentile(px, 60), MYOCARDIUM_T1_MS, 0.0)
    t1map = exam.image(map_series, "t1map", geometry, 1, t1, 0.0, TriggerTime=trigger,
                       **gating(exam.profile, exam.rr, 1))
    return [images, [t1map]]


def _lge(exam: _Exam) -> list[list[Image]]:
    """Inversion recovery at every short-axis position, mid-diastole, with PSIR images."""
    p = exam.profile
    mag_series = exam.series("lge", "LGE_PSIR_SAX")
    psir_series = mag_series if p.psir_one_series else exam.series("lge-psir", "LGE_PSIR_SAX_PSIR")
    trigger = _ds(0.6 * exam.rr)
    mags, psirs = [], []
    for k, sl in enumerate(exam.sax):
        geometry, px = sl.images[len(sl.images) // 2]
        fields = {"TriggerTime": trigger, "InversionTime": _ds(LGE_TI_MS),
                  "ScanningSequence": "GR\\IR", **gating(p, exam.rr, 1)}
        dark = px.astype(np.float64) * 0.25
        mags.append(exam.image(mag_series, "lge", geometry, 2 * k + 1, dark, k * exam.rr, **fields))
        psirs.append(exam.image(psir_series, "psir", geometry, 2 * k + 2, 2048.0 + dark,
                                k * exam.rr, image_kind=2, **fields))
    return [mags + psirs] if p.psir_one_series else [mags, psirs]


def secondary_capture(template: Dataset) -> Dataset:
    """An RGB screenshot (a report page) as a Secondary Capture image, pixel data set."""
    ds = _new_dataset(template, _PATIENT_STUDY, U.SecondaryCaptureImageStorage,
                      make_uid("secondary-capture", template.StudyInstanceUID))
    ds.SeriesInstanceUID = make_uid("secondary-capture-series", template.StudyInstanceUID)
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 900, 1, "Report screenshot"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = np.arange(64, dtype=np.uint8)[None, :] * 4
    rgb[16:48, 16:48, 1] = 200
    ds.PixelData = rgb.tobytes()
    return ds


def protocol_document(template: Dataset) -> Dataset:
    """The exam's protocol as an Encapsulated PDF document (no image)."""
    ds = _new_dataset(template, _PATIENT_STUDY, U.EncapsulatedPDFStorage,
                      make_uid("document", template.StudyInstanceUID))
    ds.SeriesInstanceUID = make_uid("document-series", template.StudyInstanceUID)
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DOC", 990, 1
    ds.SeriesDescription = ds.DocumentTitle = "Exam protocol"
    ds.ContentDate, ds.ContentTime = template.get("StudyDate", ""), "090000"
    ds.ConceptNameCodeSequence = []
    ds.BurnedInAnnotation = "NO"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = _PDF
    return ds


def localiser_series(template: Dataset, pixels: np.ndarray) -> list[Dataset]:
    """Three single-frame localiser images (axial, coronal, sagittal) in a series of their own."""
    out = []
    keys = ("PatientName", "PatientID", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
            "StudyDescription", "StudyInstanceUID", "Modality", "Manufacturer",
            "FrameOfReferenceUID", "Rows", "Columns", "SamplesPerPixel",
            "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
            "PixelRepresentation", "PixelSpacing", "SliceThickness")
    for n, iop in enumerate(([1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1], [0, 1, 0, 0, 0, -1]), 1):
        ds = _new_dataset(template, keys, U.MRImageStorage,
                          make_uid("localiser", template.StudyInstanceUID, n))
        ds.SeriesInstanceUID = make_uid("localiser", template.StudyInstanceUID)
        ds.SeriesNumber, ds.SeriesDescription = 1, "localizer"
        ds.SeriesTime = "080000.000000"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.InstanceNumber = n
        ds.ImagePositionPatient = [-150.0, -150.0, 0.0]
        ds.ImageOrientationPatient = iop
        ds.PixelData = pixels.astype("<u2").tobytes()
        out.append(ds)
    return out
