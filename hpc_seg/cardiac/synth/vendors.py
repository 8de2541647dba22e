"""How each vendor's scanner writes the headers of a cardiac exam (the export generator's profiles).

A reader that only knows the standard misreads real exports. The habits written here, per vendor:

- ``siemens``: a short-axis cine as one series per slice; ImageType ``ORIGINAL\\PRIMARY\\M\\...``
  with ``P`` for phase images; flow as two series (magnitude, phase) whose SequenceName carries
  the velocity encoding (``*fl2d1r3_v150in``); AcquisitionTime per image; PSIR LGE as a
  separate derived series; a real-time cine without TriggerTime.
- ``philips``: multi-slice series; ImageType ``ORIGINAL\\PRIMARY\\M_FFE\\M\\FFE``; HeartRate 60
  in every series, gated or not (seen in real Philips T1W/STIR files); TriggerTime reused for the
  time of a dynamic in ungated series; flow magnitude and velocity images in one series
  (``M_PCA`` / ``VELOCITY MAP``); LGE magnitude and real (PSIR) images in one series.
- ``ge``: multi-slice series; ImageType ``ORIGINAL\\PRIMARY\\OTHER`` whatever the image;
  magnitude/phase told by the private element (0043,102F); MagneticFieldStrength in gauss (older
  software; a real GENESIS_SIGNA file says 2000); HeartRate 0 and CardiacNumberOfImages 0 when
  not gated, and TriggerTime reused for the phase time of an ungated multi-phase series (seen in
  a real multi-phase fMRI); one AcquisitionTime for a whole series.
- ``canon``: multi-slice series; ImageType ``ORIGINAL\\PRIMARY\\OTHER`` (``PHASE`` for flow
  phase images, in the magnitude's series); AcquisitionTime per image; a real-time cine without
  TriggerTime.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpc_seg.errors import ConfigError

VENDOR_PROFILES = ("siemens", "philips", "ge", "canon")


@dataclass(frozen=True)
class VendorProfile:
    """One vendor's header habits for the series of a cardiac exam."""

    name: str
    maker: str
    model: str
    field_strength: str            # MagneticFieldStrength as this vendor writes it
    sax_per_slice: bool            # the short-axis cine as one series per slice position
    image_types: dict[str, tuple[str, ...]]
    sequence_names: dict[str, str]
    heart_rate_always: bool        # HeartRate written into ungated series too (Philips: 60)
    trigger_holds_time: bool       # ungated dynamic series put the image's time in TriggerTime
    explicit_not_gated: bool       # HeartRate 0 and CardiacNumberOfImages 0 when not gated (GE)
    per_image_time: bool           # AcquisitionTime per image (else one per series)
    flow_one_series: bool          # flow magnitude and phase images in one series
    psir_one_series: bool          # LGE magnitude and PSIR images in one series
    private_image_kind: bool       # GE (0043,102F): 0 magnitude, 1 phase

    def image_type(self, kind: str) -> list[str]:
        """ImageType values of an image of ``kind`` (cine, realtime, perfusion, flow_mag,
        flow_phase, molli, t1map, lge, psir, localiser)."""
        return list(self.image_types.get(kind, self.image_types["cine"]))


_SIEMENS = VendorProfile(
    name="siemens", maker="SIEMENS", model="MAGNETOM Aera", field_strength="1.5",
    sax_per_slice=True,
    image_types={"cine": ("ORIGINAL", "PRIMARY", "M", "RETRO", "DIS2D"),
                 "realtime": ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                 "perfusion": ("ORIGINAL", "PRIMARY", "M", "ND", "NORM", "MOCO"),
                 "flow_mag": ("ORIGINAL", "PRIMARY", "M", "RETRO", "DIS2D"),
                 "flow_phase": ("ORIGINAL", "PRIMARY", "P", "RETRO", "DIS2D"),
                 "molli": ("ORIGINAL", "PRIMARY", "M", "ND"),
                 "t1map": ("DERIVED", "PRIMARY", "T1 MAP", "ND", "MOCO"),
                 "lge": ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                 "psir": ("DERIVED", "PRIMARY", "PSIR", "ND", "NORM"),
                 "localiser": ("ORIGINAL", "PRIMARY", "M", "ND", "NORM")},
    sequence_names={"cine": "*tfi2d1_25", "realtime": "*tfi2d1_rt", "perfusion": "*tfl2d1_sr",
                    "flow": "*fl2d1r3_v150in", "molli": "*tfi2d1_molli", "lge": "*tfl2d1",
                    "localiser": "*tfi2d1"},
    heart_rate_always=False, trigger_holds_time=False, explicit_not_gated=False,
    per_image_time=True, flow_one_series=False, psir_one_series=False, private_image_kind=False)

_PHILIPS = VendorProfile(
    name="philips", maker="Philips Medical Systems", model="Ingenia", field_strength="1.5",
    sax_per_slice=False,
    image_types={"cine": ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                 "realtime": ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                 "perfusion": ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                 "flow_mag": ("ORIGINAL", "PRIMARY", "M_PCA", "M", "PCA"),
                 "flow_phase": ("ORIGINAL", "PRIMARY", "VELOCITY MAP", "P", "PCA"),
                 "molli": ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
                 "t1map": ("DERIVED", "PRIMARY", "T1 MAP", "T1"),
                 "lge": ("ORIGINAL", "PRIMARY", "M_IR", "M", "IR"),
                 "psir": ("ORIGINAL", "PRIMARY", "R_IR", "R", "IR"),
                 "localiser": ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE")},
    sequence_names={}, heart_rate_always=True, trigger_holds_time=True, explicit_not_gated=False,
    per_image_time=True, flow_one_series=True, psir_one_series=True, private_image_kind=False)

_GE = VendorProfile(
    name="ge", maker="GE MEDICAL SYSTEMS", model="Signa HDxt", field_strength="15000",
    sax_per_slice=False,
    image_types={"cine": ("ORIGINAL", "PRIMARY", "OTHER"),
                 "t1map": ("DERIVED", "SECONDARY", "T1MAP"),
                 "psir": ("DERIVED", "PRIMARY", "OTHER")},
    sequence_names={}, heart_rate_always=False, trigger_holds_time=True, explicit_not_gated=True,
    per_image_time=False, flow_one_series=True, psir_one_series=False, private_image_kind=True)

_CANON = VendorProfile(
    name="canon", maker="Canon Medical Systems", model="Vantage Titan", field_strength="1.5",
    sax_per_slice=False,
    image_types={"cine": ("ORIGINAL", "PRIMARY", "OTHER"),
                 "flow_phase": ("ORIGINAL", "PRIMARY", "PHASE"),
                 "t1map": ("DERIVED", "PRIMARY", "T1 MAP"),
                 "psir": ("DERIVED", "PRIMARY", "PSIR")},
    sequence_names={}, heart_rate_always=False, trigger_holds_time=False, explicit_not_gated=False,
    per_image_time=True, flow_one_series=True, psir_one_series=False, private_image_kind=False)

PROFILES = {p.name: p for p in (_SIEMENS, _PHILIPS, _GE, _CANON)}


def profile(name: str | None, manufacturer: str = "") -> VendorProfile:
    """The profile called ``name``, or (None) the one of the header's Manufacturer."""
    if name is None:
        maker = manufacturer.upper()
        name = next((p.name for p in PROFILES.values() if p.maker.upper().split()[0] in maker),
                    "ge" if maker.startswith("GE") else "siemens")
    if name not in PROFILES:
        raise ConfigError(f"vendor: must be one of {', '.join(VENDOR_PROFILES)}, got {name!r}")
    return PROFILES[name]
