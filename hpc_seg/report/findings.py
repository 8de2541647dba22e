"""What a study tells the report about a run folder: headlines, its key figure, its evidence.

The report reads run folders and knows no study. Each study has a function
(:data:`FindingsFn`) that looks for its own output files in a run folder and, when it finds
them, returns :class:`StudyFindings` computed from them: headline numbers beside the published
ones, with n, spread and a verdict in words, the figure to look at first, and the tables and
figures that back the headlines. ``hpc_seg.pipeline.registry.FINDINGS`` lists the studies'
functions; ``hpc-seg run`` and ``hpc-seg report`` hand them to :func:`collect_findings`.
A run folder no study recognises gets the generic page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:      # pandas is imported where used: the CLI imports this module via the registry
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Headline:
    """One claim of a study and this run's number for it.

    ``value`` is computed from the run's files (``source`` says which file, row and column);
    ``published`` is the paper's number for the same claim when it has one (``published_text``
    says what it is, or states a claim without a single number, such as "+16-26 %").
    Paired statistics (``ci``, ``p_value``) are shown when the run's evaluation computed them.
    """

    key: str
    """stable identifier, e.g. ``cardiac.ef_error`` (summary.json, tests)"""
    label: str
    """what is measured, in words"""
    value: float | None
    short: str = ""
    """the label in at most 30 characters, for the console (default: ``label``)"""
    verdict: str
    """a few words a console line can hold: "too few patients to compare\""""
    unit: str = ""
    decimals: int = 2
    n: int | None = None
    n_unit: str = ""
    spread: float | None = None
    spread_label: str = "sd"
    ci: tuple[float, float] | None = None
    """95 % confidence interval of ``value``, or of the paired difference ``stats_of`` names"""
    p_value: float | None = None
    stats_of: str = ""
    """what ``ci`` and ``p_value`` compare, e.g. "HAD-Net − student" """
    compare: str = ""
    """this run's own reference, in words: "student 0.412\""""
    published: float | None = None
    published_text: str = ""
    published_short: str = ""
    """``published_text`` in at most 10 characters, for the console (when ``published`` is None)"""
    detail: str = ""
    """the verdict's reasons, a sentence or two (page only)"""
    source: str = ""
    missing: str = ""
    """why ``value`` is None ("not run: no ImageNet weights")"""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly values (NaN becomes None)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, tuple):
                return [clean(x) for x in v]
            return v
        return {k: clean(v) for k, v in self.__dict__.items()}


@dataclass(kw_only=True)
class Figure:
    path: Path
    caption: str = ""


@dataclass(kw_only=True)
class Evidence:
    """One table of a study (and the figures drawn from it), as the page shows it.

    ``table`` is ready to show: pivoted, columns named with their units. ``csv`` is the file it
    came from, linked from the page. A table longer than the page's fold limit is folded;
    ``fold`` forces either way. ``id_columns`` hold identifiers (case ids, trial numbers), shown
    as they are. ``optuna`` names an Optuna storage whose study (best trial, plots, trials) is
    shown here. ``covers`` lists other files this evidence stands for, so the page does not
    repeat them among "other files".
    """

    title: str
    table: pd.DataFrame | None = None
    csv: Path | None = None
    figures: list[Figure] = field(default_factory=list)
    caption: str = ""
    id_columns: Sequence[str] = ()
    decimals: dict[str, int] = field(default_factory=dict)
    fold: bool | None = None
    optuna: Path | None = None
    covers: list[Path] = field(default_factory=list)


@dataclass(kw_only=True)
class StudyFindings:
    """What one study found in a run folder."""

    key: str
    title: str
    reference: str
    folder: Path
    headlines: list[Headline]
    key_figure: Figure | None = None
    evidence: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def files(self) -> set[Path]:
        """Every file the study's sections show or stand for."""
        out = {self.key_figure.path} if self.key_figure else set()
        for e in self.evidence:
            out |= {f.path for f in e.figures} | set(e.covers)
            out |= {p for p in (e.csv, e.optuna) if p is not None}
        return {Path(p).resolve() for p in out}


FindingsFn = Callable[[Path], list[StudyFindings]]


def collect_findings(run: Path, studies: Sequence[FindingsFn]) -> list[StudyFindings]:
    """Every study's findings in ``run``; a study whose code fails is a note, not a lost page."""
    found: list[StudyFindings] = []
    for fn in studies:
        try:
            found += fn(Path(run))
        except Exception as exc:  # noqa: BLE001 - one study's bad file must not lose the others
            module = getattr(fn, "__module__", "") or str(fn)
            study = module.removesuffix(".findings").rsplit(".", 1)[-1]    # cardiac, transfer...
            log.warning("report: %s failed on %s: %s: %s", module, run, type(exc).__name__, exc)
            found.append(StudyFindings(
                key=study, title=f"{study}: results not readable", reference="",
                folder=Path(run), headlines=[],
                notes=[f"{module} could not read this run's results: {type(exc).__name__}: {exc}"]))
    return found


def unreadable(key: str, title: str, reference: str, path: Path, run: Path, needed: set[str]
               ) -> StudyFindings:
    """The findings of a study whose main table is there but empty, broken or missing columns:
    no headline, and a note that says which file and what it lacks."""
    rel = Path(path).relative_to(run).as_posix() if Path(path).is_relative_to(run) else str(path)
    return StudyFindings(key=key, title=title, reference=reference, folder=Path(path).parent,
                         headlines=[], notes=[f"{rel} is empty, unreadable or lacks the columns "
                                              f"{', '.join(sorted(needed))}: no headline."])


# --- helpers the studies share --------------------------------------------------------------

def find_files(run: Path, name: str, max_depth: int = 6) -> list[Path]:
    """Files called ``name`` under ``run`` (hidden folders and the report's own left out),
    shallow first."""
    run = Path(run)
    hits = [p for p in run.rglob(name)
            if not any(part.startswith(".") or part.endswith("_files")
                       for part in p.relative_to(run).parts[:-1])
            and len(p.relative_to(run).parts) <= max_depth]
    return sorted(hits, key=lambda p: (len(p.parts), str(p)))


def read_csv(path: Path) -> pd.DataFrame | None:
    """A CSV, or None when it is missing, empty or unreadable (logged)."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        log.warning("report: %s: unreadable (%s)", path, exc)
        return None


#: column names a paired comparison table may use (first match wins)
_PAIR_COLUMNS = {
    "a": ("a", "model_a", "method_a", "arm_a", "model", "method"),
    "b": ("b", "model_b", "method_b", "arm_b", "baseline", "reference", "versus", "vs"),
    "diff": ("mean_diff", "diff", "difference", "mean_difference", "delta"),
    "low": ("ci_low", "ci95_low", "ci_lo", "lower", "ci_lower"),
    "high": ("ci_high", "ci95_high", "ci_hi", "upper", "ci_upper"),
    "p": ("p_value", "p", "wilcoxon_p", "p_wilcoxon", "pvalue"),
    "n": ("n", "n_pairs", "pairs"),
}


def _column(df: pd.DataFrame, kind: str) -> str | None:
    return next((c for c in _PAIR_COLUMNS[kind] if c in df.columns), None)


@dataclass(frozen=True)
class Paired:
    """A paired comparison a run's evaluation computed (bootstrap CI, Wilcoxon p-value)."""

    diff: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int | None


def paired_comparison(folder: Path, a: str, b: str, **where: str) -> Paired | None:
    """The row comparing ``a`` with ``b`` (and matching ``where``, e.g. ``region="ET"``) in any
    CSV of ``folder`` that has confidence-interval or p-value columns; None if there is none.

    Arms are matched in ``a``/``b``-like columns, or in a ``comparison`` column reading
    "A vs B"; a ``where`` key whose column the table lacks is ignored.
    """
    import pandas as pd

    for path in sorted(Path(folder).glob("*.csv")):
        try:
            head = pd.read_csv(path, nrows=0)
        except (OSError, ValueError):
            continue
        if not (_column(head, "low") and _column(head, "high")) and not _column(head, "p"):
            continue
        df = read_csv(path)
        if df is None or df.empty:
            continue
        if "comparison" in df.columns:
            text = df["comparison"].astype(str).str.lower()
            rows = df[text.isin([f"{a} vs {b}".lower(), f"{a} vs. {b}".lower(),
                                 f"{a} - {b}".lower()])]
        else:
            ca, cb = _column(df, "a"), _column(df, "b")
            if ca is None or cb is None:
                continue
            rows = df[(df[ca].astype(str) == a) & (df[cb].astype(str) == b)]
        for col, want in where.items():
            if col in rows.columns:
                rows = rows[rows[col].astype(str) == str(want)]
        if len(rows) != 1:
            continue
        r = rows.iloc[0]

        def num(kind: str) -> float | None:
            c = _column(df, kind)
            v = pd.to_numeric(r[c], errors="coerce") if c else float("nan")
            return float(v) if pd.notna(v) else None

        low, high, n = num("low"), num("high"), num("n")
        return Paired(diff=num("diff"), ci=(low, high) if low is not None and high is not None
                      else None, p_value=num("p"), n=int(n) if n is not None else None)
    return None


def extra_columns(df: pd.DataFrame, path: Path, shown: set[str], title: str) -> list[Evidence]:
    """The whole table, folded, when it has columns the study's views above do not show (a newer
    evaluation's statistics, say); [] otherwise."""
    extra = [c for c in df.columns if c not in shown]
    if not extra:
        return []
    return [Evidence(title=f"{title}: every column", table=df, csv=path, fold=True,
                     caption=f"Columns not summarised above: {', '.join(map(str, extra))}.")]


def clear_of_zero(ci: tuple[float, float] | None, what: str) -> str:
    """A sentence on a paired difference's 95 % CI: clear of zero, or not."""
    if ci is None:
        return ""
    low, high = ci
    if low > 0 or high < 0:
        return f"The 95 % CI of {what} excludes 0."
    return f"The 95 % CI of {what} includes 0: no clear difference."


def mean_ci(mean: float, sd: float | None, n: int | None) -> tuple[float, float] | None:
    """Normal-approximation 95 % interval of a mean (None for n < 2 or no sd)."""
    if n is None or n < 2 or sd is None or not math.isfinite(sd):
        return None
    half = 1.96 * sd / math.sqrt(n)
    return (mean - half, mean + half)
