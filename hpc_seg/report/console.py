"""The closing table ``hpc-seg run`` prints: the report's headlines, one line each, in at most
100 columns (the page and ``summary.json`` have the full text). A run no study recognises gets
its stages instead, one line each."""

from __future__ import annotations

from pathlib import Path

from hpc_seg.report import numbers
from hpc_seg.report.collect import StageRow
from hpc_seg.report.findings import Headline, StudyFindings

WIDTH = 100


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def _this_run(h: Headline) -> str:
    if h.value is None:
        return "n/a"
    text = numbers.number(h.value, h.decimals)
    if h.unit == "%":
        text += " %"
    if h.spread is not None:
        text += f" ±{numbers.number(h.spread, h.decimals)}"
    if h.n is not None:
        text += f" n={numbers.count(h.n)}"
    return text


def _published(h: Headline) -> str:
    if h.published is not None:
        return numbers.number(h.published, h.decimals)
    return h.published_short or h.published_text or "–"


def closing_lines(findings: list[StudyFindings], stages: list[StageRow], title: str,
                  root: Path | str, width: int = WIDTH) -> list[str]:
    """Lines of the closing table, none longer than ``width``."""
    total = sum(r.seconds or 0 for r in stages)
    lines = [_clip(f"hpc-seg '{title}': {len(stages)} stage(s), {numbers.duration(total)} of stage "
                   f"time; outputs under {root}", width)]
    heads = [(s.key, h) for s in findings for h in s.headlines]
    if heads:
        cols = [("study", 8), ("finding", 24), ("this run", 19), ("published", 10)]
        rest = width - sum(w + 1 for _, w in cols)
        lines.append(" ".join(name.ljust(w) for name, w in cols) + " verdict")
        for key, h in heads:
            cells = [key, h.short or h.label, _this_run(h), _published(h)]
            text = " ".join(_clip(c, w).ljust(w) for c, (_, w) in zip(cells, cols))
            lines.append((text + " " + _clip(h.verdict, rest)).rstrip())
        missing = [s.key for s in findings if not s.headlines]
        for key in missing:
            lines.append(_clip(f"{key:<9} no headline: this study's results are incomplete", width))
        return lines
    lines.append(f"{'stage':<24} {'took':>10}  outputs")
    for r in stages:
        outs = ", ".join(f"{k} {t}" for k, t, _ in r.outputs)
        lines.append(_clip(f"{r.stage:<24} {numbers.duration(r.seconds):>10}  {outs}", width)
                     .rstrip())
    return lines
