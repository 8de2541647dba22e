"""What kind of series a set of images is, from their headers: a cardiac cine, or which other kind.

A cardiac MR exam holds far more than the cine: perfusion, flow, mapping, late enhancement,
real-time cines, and the non-cardiac series of any export (fMRI, diffusion, anatomy). A cine, as a
cardiac MR physicist would define it from the headers:

- it is ECG-gated (prospectively or retrospectively): the header says so (a synchronisation
  technique, a trigger source, an R-R interval, a heart rate, CardiacNumberOfImages, ScanOptions
  CG/PPG), or, where the vendor does not use TriggerTime for anything else, its trigger times vary;
- at each slice position its images sit at several trigger times spread over one cardiac cycle:
  a span no longer than the longest R-R interval a heart has (:data:`MAX_CYCLE_MS`), within a
  stated R-R interval and covering a good part of it (:data:`MIN_CYCLE_COVER`);
- the inversion time and the echo time are constant (they vary in T1/T2/T2* mapping);
- its images are magnitude images (not phase, velocity, or derived maps).

:func:`classify` returns the first kind that a series' headers prove, with a sentence saying why:

==============  ==================================================================================
``flow``        phase-contrast: velocity-encoded sequence, phase/velocity images, a VENC
``mapping``     quantitative maps (T1/T2/T2*/ECV/B0 map image types), or varying TI/TE at a position
``lge``         late gadolinium enhancement: PSIR images, or gated inversion-recovery images with
                one image (magnitude, or magnitude + phase) per position
``not_cine``    one image per position; phase images of no flow; several images per position with
                no sign of gating and no times to tell a real-time cine from a dynamic series
``dynamic``     fMRI, DCE and other time series: trigger times spanning more than a cardiac cycle,
                or ungated images more than :data:`REALTIME_MAX_INTERVAL_MS` apart
``realtime``    an ungated (real-time) cine: images at one position a few tens of ms apart
``perfusion``   gated, one trigger time per position, many dynamics over tens of seconds
``cine``        what is left when the headers prove a gated, magnitude, one-cycle series
==============  ==================================================================================

Vendor habits learned from real scanner files (and documented by the vendors): Philips writes a
HeartRate (60) into series that were never gated and reuses TriggerTime for the time of a dynamic,
so neither proves gating on a Philips scanner; GE reuses TriggerTime for the phase time of a
multi-phase (fMRI) series and writes HeartRate 0 and CardiacNumberOfImages 0 when it did not gate;
GE marks magnitude and phase images with the private element (0043,102F); Siemens names a
velocity-encoded sequence ``..._v150in``. Everything else here is standard DICOM.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import median

from hpc_seg.cardiac.dicom.frame import Acquisition, DicomFrame

KINDS = ("cine", "flow", "mapping", "lge", "not_cine", "dynamic", "realtime", "perfusion")
#: longest cardiac cycle accepted (30 beats per minute); a cine's trigger times span less
MAX_CYCLE_MS = 2000.0
#: ungated images closer than this in time follow the heart's motion: a real-time cine
REALTIME_MAX_INTERVAL_MS = 200.0
#: gated images at one trigger time per position: this many dynamics make a perfusion series
PERFUSION_MIN_DYNAMICS = 10
#: inversion or echo times that differ by more than this vary (a mapping series)
VARIES_MS = 1.0
#: trigger times may reach a little past the nominal R-R interval (the heart rate drifts)
RR_TOLERANCE = 1.25
#: a cine's phases cover at least this share of a stated R-R interval (prospective gating leaves
#: out the last 10-15 %, a cine of two long-axis phases still covers half)
MIN_CYCLE_COVER = 0.25

_VELOCITY_TOKENS = frozenset({"VELOCITY", "VELOCITY MAP", "PCA", "M_PCA", "PHASE CONTRAST M",
                              "FLOW", "VENC", "PC"})
_PHASE_TOKENS = frozenset({"P", "PHASE", "PHASE MAP"})
_SIEMENS_VENC = re.compile(r"_V\d+")
#: image-type values of derived maps that do not say "MAP" (diffusion maps are maps as well)
_MAP_TOKENS = frozenset({"ECV", "ADC", "FA"})
_IR_MIN_MS = 50.0
_GATED_TECHNIQUES = ("PROSPECTIVE", "RETROSPECTIVE", "PACED", "AUGMENTED")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A series' kind and the sentence that says why (an ``issues`` row's detail)."""

    kind: str
    why: str


def _tokens(acqs: list[Acquisition]) -> set[str]:
    return {t.strip() for a in acqs for t in a.image_type.split("\\") if t.strip()}


def _vendor(acqs: list[Acquisition]) -> str:
    maker = acqs[0].manufacturer if acqs else ""
    for needle, name in (("PHILIPS", "philips"), ("SIEMENS", "siemens"), ("TOSHIBA", "canon"),
                         ("CANON", "canon")):
        if needle in maker:
            return name
    return "ge" if maker.startswith("GE") else maker.lower()


def _fmt(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:g} ms" if hi - lo <= VARIES_MS else f"{lo:g}-{hi:g} ms"


def _varies(groups: list[list[float]]) -> list[float] | None:
    """The values at the first position where they vary by more than :data:`VARIES_MS`."""
    for values in groups:
        finite = [v for v in values if math.isfinite(v)]
        if finite and max(finite) - min(finite) > VARIES_MS:
            return finite
    return None


def _gating(frames: list[DicomFrame], vendor: str, triggers_vary: bool) -> tuple[bool, str]:
    """(ECG-gated?, the header evidence)."""
    acqs = [f.acquisition for f in frames]
    techniques = {x.sync_technique for x in acqs if x.sync_technique}
    if techniques & set(_GATED_TECHNIQUES):
        return True, f"CardiacSynchronizationTechnique {'/'.join(sorted(techniques))}"
    if techniques == {"NONE"}:
        return False, "CardiacSynchronizationTechnique NONE"
    source = next((x.trigger_source for x in acqs if x.trigger_source), "")
    if source and source not in ("NONE", "NO"):
        return True, f"TriggerSourceOrType {source}"
    options = {t.strip() for x in acqs for t in x.scan_options.split("\\")}
    if options & {"CG", "PPG"}:
        return True, f"ScanOptions {'/'.join(sorted(options & {'CG', 'PPG'}))}"
    rr = [x.nominal_interval_ms for x in acqs if math.isfinite(x.nominal_interval_ms)
          and x.nominal_interval_ms > 0]
    if rr:
        return True, f"NominalInterval (R-R) {median(rr):g} ms"
    cardiac_images = max(f.cardiac_images for f in frames)
    if cardiac_images > 1:
        return True, f"CardiacNumberOfImages {cardiac_images}"
    rates = [x.heart_rate for x in acqs if math.isfinite(x.heart_rate)]
    # Philips writes HeartRate 60 into series it never gated (seen in real T1W/STIR files).
    if rates and max(rates) > 0 and vendor != "philips":
        return True, f"HeartRate {max(rates):g}"
    # Philips and GE reuse TriggerTime for the time of a dynamic or a phase; GE says "not
    # gated" with HeartRate 0. Elsewhere, varying trigger times are what gating writes.
    if triggers_vary and vendor != "philips" and not (rates and max(rates) == 0):
        return True, "trigger times vary"
    if rates and max(rates) == 0:
        return False, "HeartRate 0"
    return False, "no header field says it was ECG-gated"


def _interval_ms(times: list[float]) -> float | None:
    """Median step between the distinct sorted times (ms) at one position; None if < 2."""
    distinct = sorted(set(round(t, 3) for t in times if math.isfinite(t)))
    if len(distinct) < 2:
        return None
    return median(b - a for a, b in zip(distinct, distinct[1:]))


def _flow(frames: list[DicomFrame], tokens: set[str], gated: bool) -> str | None:
    """Why the series is phase-contrast flow (None if it is not)."""
    acqs = [f.acquisition for f in frames]
    venc = [a.velocity_encoding for a in acqs if math.isfinite(a.velocity_encoding)
            and a.velocity_encoding > 0]
    if venc:
        return f"velocity encoding {max(venc):g} cm/s: phase-contrast flow"
    seq = next((a.sequence_name for a in acqs if _SIEMENS_VENC.search(a.sequence_name)), "")
    if seq:
        return f"velocity-encoded sequence {seq!r}: phase-contrast flow"
    if tokens & _VELOCITY_TOKENS:
        return f"image type {'/'.join(sorted(tokens & _VELOCITY_TOKENS))}: phase-contrast flow"
    phase = bool(tokens & _PHASE_TOKENS) or any(a.complex_component == "PHASE" for a in acqs) \
        or any(a.ge_image_kind == 1 for a in acqs)
    if phase and gated:
        return "ECG-gated phase images: phase-contrast flow"
    return None


def _map_tokens(tokens: set[str]) -> set[str]:
    """Image-type values of parametric maps (T1 MAP, T2 MAP, B0 MAP, ECV...); a Philips flow
    series' VELOCITY MAP is flow, found before."""
    return {t for t in tokens if ("MAP" in t and "VELOCITY" not in t) or t in _MAP_TOKENS}


def classify(frames: list[DicomFrame], at_positions: list[list[int]]) -> Verdict:
    """The kind of a one-orientation series (``at_positions``: indices into ``frames`` of the
    images at each slice position)."""
    acqs = [f.acquisition for f in frames]
    vendor = _vendor(acqs)
    tokens = _tokens(acqs)
    per_position = max(len(g) for g in at_positions)
    n_pos = len(at_positions)
    triggers = [[frames[i].trigger_time_ms for i in g if frames[i].acquisition.trigger_given]
                for g in at_positions]
    spans = [max(t) - min(t) for t in triggers if t]
    span = max(spans, default=0.0)
    phases = max(len({round(t, 1) for t in ts}) for ts in triggers) if any(triggers) else 1
    gated, evidence = _gating(frames, vendor, triggers_vary=span > 0)

    why = _flow(frames, tokens, gated)
    if why:
        return Verdict("flow", why)
    maps = _map_tokens(tokens)
    if maps:
        return Verdict("mapping", f"image type {'/'.join(sorted(maps))}: a parametric map")
    if "PSIR" in tokens or any("PSIR" in t for t in tokens):
        return Verdict("lge", "PSIR images: late gadolinium enhancement")
    ti = _varies([[acqs[i].inversion_ms for i in g] for g in at_positions])
    if ti:
        return Verdict("mapping", f"inversion times vary at one position ({_fmt(ti)}): T1 "
                                  f"mapping (MOLLI/ShMOLLI)")
    te = _varies([[acqs[i].echo_ms for i in g] for g in at_positions])
    if te:
        return Verdict("mapping", f"echo times vary at one position ({_fmt(te)}): T2/T2* mapping")
    if tokens & _PHASE_TOKENS or any(a.complex_component == "PHASE" for a in acqs):
        return Verdict("not_cine", "phase images (not magnitude), not velocity-encoded")
    inversion = [a.inversion_ms for a in acqs if math.isfinite(a.inversion_ms)]
    ir = (inversion and max(inversion) >= _IR_MIN_MS) or "IR" in acqs[0].scanning_sequence
    if phases == 1 and per_position <= 2 and ir and gated:
        ti_text = f" (TI {_fmt(inversion)})" if inversion else ""
        return Verdict("lge", f"ECG-gated inversion recovery{ti_text}, {per_position} image(s) "
                              f"per position: late gadolinium enhancement")
    if per_position == 1:
        return Verdict("not_cine", "one image per slice position")
    return _timed_kind(frames, at_positions, triggers, span, phases, per_position, n_pos,
                       vendor, gated, evidence)


def _timed_kind(frames: list[DicomFrame], at_positions: list[list[int]],
                triggers: list[list[float]], span: float, phases: int, per_position: int,
                n_pos: int, vendor: str, gated: bool, evidence: str) -> Verdict:
    """The kind of a series with several magnitude images per position, from its timing."""
    acqs = [f.acquisition for f in frames]
    many = f"{per_position} images per position"
    if span > MAX_CYCLE_MS:
        gate = "ECG-gated" if gated else f"not ECG-gated ({evidence})"
        return Verdict("dynamic", f"{gate}; trigger times span {span:g} ms at one position, "
                                  f"longer than any cardiac cycle (<= {MAX_CYCLE_MS:g} ms): "
                                  f"a dynamic series (fMRI, DCE...), not a cine")
    if not gated:
        # A vendor that reuses TriggerTime (Philips, GE) puts the image's time there; otherwise
        # the acquisition times say how far apart the images are.
        if span > 0:
            steps = [_interval_ms(t) for t in triggers]
        else:
            steps = [_interval_ms([acqs[i].time_s * 1000.0 for i in g]) for g in at_positions]
        steps = [s for s in steps if s is not None]
        if steps and median(steps) <= REALTIME_MAX_INTERVAL_MS:
            return Verdict("realtime", f"not ECG-gated ({evidence}); {many}, "
                                       f"{median(steps):.0f} ms apart: a real-time cine")
        if steps:
            return Verdict("dynamic", f"not ECG-gated ({evidence}); {many}, "
                                      f"{median(steps):.0f} ms apart: a dynamic series")
        temporal = max(a.temporal_positions for a in acqs)
        if temporal > 1:
            return Verdict("dynamic", f"not ECG-gated ({evidence}); {temporal} temporal "
                                      f"positions: a dynamic series")
        return Verdict("not_cine", f"{many} but not ECG-gated ({evidence}) and no times that "
                                   f"tell a real-time cine from a dynamic series")
    if phases == 1:
        times = [[acqs[i].time_s for i in g] for g in at_positions]
        lasting = max((max(t) - min(t) for t in ([v for v in ts if math.isfinite(v)]
                                                  for ts in times) if t), default=0.0)
        if per_position >= PERFUSION_MIN_DYNAMICS:
            over = f" over {lasting:.0f} s" if lasting > 0 else ""
            return Verdict("perfusion", f"ECG-gated ({evidence}), one trigger time per position, "
                                        f"{per_position} dynamics at each of {n_pos} "
                                        f"position(s){over}: first-pass perfusion")
        return Verdict("not_cine", f"ECG-gated ({evidence}) but {many} at one trigger time")
    rr = _rr_ms(acqs, vendor)
    reach = max(max(t) for t in triggers if t)
    if rr is not None and reach > RR_TOLERANCE * rr:
        return Verdict("dynamic", f"trigger times reach {reach:g} ms, beyond the R-R interval "
                                  f"({rr:g} ms): not one cardiac cycle")
    if rr is not None and span < MIN_CYCLE_COVER * rr:
        return Verdict("not_cine", f"ECG-gated ({evidence}), but its {phases} trigger times span "
                                   f"{span:g} ms, {span / rr:.0%} of the R-R interval ({rr:g} ms): "
                                   f"not spread over the cardiac cycle")
    return Verdict("cine", f"ECG-gated ({evidence}), {phases} phases over {span:g} ms of the "
                           f"cardiac cycle")


def _rr_ms(acqs: list[Acquisition], vendor: str) -> float | None:
    """The nominal R-R interval (ms): NominalInterval, else from a trusted HeartRate."""
    rr = [a.nominal_interval_ms for a in acqs if math.isfinite(a.nominal_interval_ms)
          and a.nominal_interval_ms > 0]
    if rr:
        return median(rr)
    rates = [a.heart_rate for a in acqs if math.isfinite(a.heart_rate) and a.heart_rate > 0]
    if rates and vendor != "philips":
        return 60000.0 / median(rates)
    return None
