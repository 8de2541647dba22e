"""The cine detector on headers alone: what a cardiac MR physicist calls a cine, and the kind of
each series that is not one, with the vendor habits that would fool a reader of the standard."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_seg.cardiac.dicom.frame import Acquisition, DicomFrame
from hpc_seg.cardiac.ingest.series_kind import MAX_CYCLE_MS, classify


def _series(positions: int, per_position: int, trigger=lambda k, i: 40.0 * i, *,
            maker: str = "SIEMENS", cardiac_images: int = 0, **acq) -> tuple[list, list]:
    """Frames of one series: ``per_position`` images at each of ``positions`` slices."""
    frames, groups = [], []
    for k in range(positions):
        groups.append([])
        for i in range(per_position):
            fields = {key: (v(k, i) if callable(v) else v) for key, v in acq.items()}
            t = trigger(k, i)
            groups[-1].append(len(frames))
            frames.append(DicomFrame(
                file=f"{k}/{i}", series_uid="1.2.3", series_number=7, series_time_s=0.0,
                instance_number=len(frames) + 1, sop_uid=f"1.2.3.{len(frames)}",
                ipp=np.array([0.0, 0.0, 8.0 * k]), iop=np.array([1.0, 0, 0, 0, 1, 0]),
                pixel_spacing=(1.0, 1.0), rows=4, cols=4,
                trigger_time_ms=0.0 if t is None else t, slice_thickness=8.0,
                cardiac_images=cardiac_images,
                acquisition=Acquisition(manufacturer=maker, trigger_given=t is not None,
                                        **fields)))
    return frames, groups


def _kind(frames_groups) -> tuple[str, str]:
    v = classify(*frames_groups)
    return v.kind, v.why


def test_a_gated_cine_over_one_cycle_is_a_cine():
    kind, why = _kind(_series(8, 25, nominal_interval_ms=1000.0))
    assert kind == "cine" and "25 phases" in why and "NominalInterval" in why


def test_trigger_times_spanning_more_than_a_heartbeat_are_a_dynamic_series():
    # the GE multi-phase fMRI: 10 slices x 10 phases, trigger times 100-10000 ms, HeartRate 0
    kind, why = _kind(_series(10, 10, lambda k, i: 100.0 + 1000.0 * i + 100.0 * k,
                              maker="GE MEDICAL SYSTEMS", heart_rate=0.0))
    assert kind == "dynamic" and "span 9000 ms" in why and f"{MAX_CYCLE_MS:g}" in why


def test_a_philips_fmri_and_phases_bunched_in_one_part_of_the_cycle_are_no_cine():
    # Philips fMRI: 3 volumes 2 s apart, the volume's time in TriggerTime
    fmri = _series(20, 3, lambda k, i: 2000.0 * i, maker="Philips Medical Systems",
                   heart_rate=60.0)
    assert _kind(fmri)[0] == "dynamic" and "span 4000 ms" in _kind(fmri)[1]
    bunched = _series(6, 5, lambda k, i: 300.0 + 10.0 * i, nominal_interval_ms=1000.0)
    kind, why = _kind(bunched)
    assert kind == "not_cine" and "4% of the R-R interval" in why


def test_philips_trigger_times_and_heart_rate_do_not_prove_gating():
    # Philips writes HeartRate 60 into ungated series and the dynamic's time into TriggerTime:
    # 30 ms apart is a real-time cine, not a gated one ...
    philips = _series(3, 30, lambda k, i: 30.0 * i, maker="PHILIPS MEDICAL SYSTEMS",
                      heart_rate=60.0)
    kind, why = _kind(philips)
    assert kind == "realtime" and "30 ms apart" in why
    # ... where the same headers from a vendor without those habits are a gated cine,
    assert _kind(_series(3, 30, lambda k, i: 30.0 * i, heart_rate=60.0))[0] == "cine"
    # and a Philips cine that says it is gated (CardiacNumberOfImages) is one.
    assert _kind(_series(3, 30, lambda k, i: 30.0 * i, maker="PHILIPS MEDICAL SYSTEMS",
                         heart_rate=60.0, cardiac_images=30))[0] == "cine"


def test_ungated_images_without_trigger_times_use_their_acquisition_times():
    realtime = _series(3, 20, lambda k, i: None, time_s=lambda k, i: 36000 + k * 2 + i * 0.045)
    assert _kind(realtime)[0] == "realtime"
    fmri = _series(3, 20, lambda k, i: None, time_s=lambda k, i: 36000 + i * 2.0)
    assert _kind(fmri) == ("dynamic", _kind(fmri)[1]) and "2000 ms apart" in _kind(fmri)[1]
    assert _kind(_series(3, 20, lambda k, i: None))[0] == "not_cine"


@pytest.mark.parametrize("field,kind,words", [
    ("inversion_ms", "mapping", "inversion times vary"), ("echo_ms", "mapping", "echo times vary")])
def test_varying_inversion_or_echo_time_is_mapping(field, kind, words):
    got = _kind(_series(1, 8, lambda k, i: 500.0, nominal_interval_ms=900.0,
                        **{field: lambda k, i: 100.0 + 80.0 * i}))
    assert got[0] == kind and words in got[1]


def test_maps_flow_and_lge_by_image_type_and_sequence():
    assert _kind(_series(1, 1, image_type="DERIVED\\PRIMARY\\T1 MAP\\ND"))[0] == "mapping"
    assert _kind(_series(1, 20, nominal_interval_ms=900.0, sequence_name="*FL2D1R3_V150IN",
                         image_type="ORIGINAL\\PRIMARY\\M\\RETRO"))[0] == "flow"
    assert _kind(_series(1, 20, maker="GE MEDICAL SYSTEMS", heart_rate=70.0,
                         ge_image_kind=lambda k, i: i % 2))[0] == "flow"
    assert _kind(_series(6, 1, lambda k, i: 500.0, inversion_ms=300.0,
                         nominal_interval_ms=900.0))[0] == "lge"
    assert _kind(_series(6, 1, image_type="DERIVED\\PRIMARY\\PSIR"))[0] == "lge"


def test_a_brain_inversion_recovery_or_field_map_is_no_cardiac_series():
    # Philips STIR (HeartRate 60 but never gated), one image per position: not LGE
    stir = _series(6, 1, lambda k, i: None, maker="PHILIPS", inversion_ms=140.0, heart_rate=60.0)
    assert _kind(stir) == ("not_cine", "one image per slice position")
    field_map = _series(33, 1, lambda k, i: None, image_type="ORIGINAL\\PRIMARY\\P\\NONE")
    assert _kind(field_map)[0] == "not_cine" and "phase" in _kind(field_map)[1]


def test_perfusion_and_triggers_beyond_the_rr_interval():
    perfusion = _series(3, 40, lambda k, i: 40.0 + 250.0 * k, nominal_interval_ms=900.0,
                        time_s=lambda k, i: 30000 + 0.9 * i)
    kind, why = _kind(perfusion)
    assert kind == "perfusion" and "40 dynamics" in why and "over 35 s" in why
    beyond = _series(4, 20, lambda k, i: 75.0 * i, nominal_interval_ms=800.0)
    assert _kind(beyond)[0] == "dynamic" and "beyond the R-R interval" in _kind(beyond)[1]
