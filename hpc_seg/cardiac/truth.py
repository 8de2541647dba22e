"""The Kaggle DSB2 truth file: ``Id,Systole,Diastole`` (end-systolic and end-diastolic LV volume, mL).

Ingest records the truth per patient in its ``subjects`` table and the labels stage scores label
volumes against it; both read the file here, so they agree on what an ``Id`` is.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hpc_seg.errors import InputError

COLUMNS = ("Id", "Systole", "Diastole")


def read_truth_csv(path: Path) -> dict[str, tuple[float, float]]:
    """``{patient_id: (systole_ml, diastole_ml)}``; ids are normalised so that ``"7"`` and
    ``"7.0"`` (pandas-written files) name the same patient. A bad file raises InputError."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(COLUMNS) - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"{path}: missing column(s) {sorted(missing)}; expected "
                                 f"{','.join(COLUMNS)}")
            return {str(int(float(r["Id"]))): (float(r["Systole"]), float(r["Diastole"]))
                    for r in reader}
    except OSError as exc:
        raise InputError(f"{path}: cannot read truth CSV: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: truth CSV has a non-numeric or missing value: {exc}") from None
