"""The page's first sections: per study, its headlines beside the published numbers, with n,
spread, paired statistics and a verdict in words, then its key figure."""

from __future__ import annotations

from pathlib import Path

from hpc_seg.report import numbers
from hpc_seg.report.findings import Headline, StudyFindings
from hpc_seg.report.html import Images, e, figure


def _p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {numbers.number(float(f'{p:.2g}'))}"


def _headline_row(h: Headline) -> str:
    if h.value is None:
        value = f'<span class="v">n/a</span><div class="sub">{e(h.missing or "not computed")}</div>'
    else:
        sub = []
        if h.spread is not None:
            sub.append(f"{h.spread_label} {numbers.number(h.spread, h.decimals)}")
        if h.n is not None:
            unit = h.n_unit[:-1] if h.n == 1 and h.n_unit.endswith("s") else h.n_unit
            sub.append(f"n = {numbers.count(h.n)}{' ' + unit if unit else ''}")
        stats = []
        if h.ci is not None:
            stats.append(f"95 % CI {numbers.number(h.ci[0], h.decimals)} to "
                         f"{numbers.number(h.ci[1], h.decimals)}")
        if h.p_value is not None:
            stats.append(_p_value(h.p_value))
        if stats:
            stats_line = (f"{h.stats_of}: " if h.stats_of else "") + ", ".join(stats)
        else:
            stats_line = ""
        unit = f' <span class="u">{e(h.unit)}</span>' if h.unit else ""
        compare = f' <span class="sub">vs {e(h.compare)}</span>' if h.compare else ""
        value = (f'<span class="nowrap"><span class="v">{e(numbers.number(h.value, h.decimals))}'
                 f'</span>{unit}</span>{compare}<div class="sub">{e(" · ".join(sub))}</div>'
                 + (f'<div class="sub">{e(stats_line)}</div>' if stats_line else ""))
    if h.published is not None:
        published = (f'<span class="v">{e(numbers.number(h.published, h.decimals))}</span>'
                     f'<div class="sub">{e(h.published_text)}</div>')
    else:
        published = e(h.published_text) if h.published_text else "–"
    detail = f'<div class="sub">{e(h.detail)}</div>' if h.detail else ""
    return (f'<tr data-key="{e(h.key)}"><td>{e(h.label)}</td>'
            f'<td class="hl-value">{value}</td><td class="hl-published">{published}</td>'
            f'<td class="verdict"><b>{e(h.verdict)}</b>{detail}</td></tr>')


def answer_section(study: StudyFindings, anchor: str, evidence_anchor: str, images: Images) -> str:
    """One study's headlines (finding, this run, published, verdict), notes and key figure."""
    rows = "".join(_headline_row(h) for h in study.headlines)
    heads = ("<table class=\"headlines\"><thead><tr><th>finding</th><th>this run</th>"
             "<th>published</th><th>verdict</th></tr></thead><tbody>" + rows + "</tbody></table>"
             if rows else "<p><em>no headline: this study's results are incomplete</em></p>")
    notes = "".join(f'<p class="notes">{e(n)}</p>' for n in study.notes)
    key = ""
    if study.key_figure is not None and Path(study.key_figure.path).is_file():
        key = figure(images, study.key_figure.path, study.key_figure.caption, key=True,
                     href=f"#{evidence_anchor}")
    ref = f' <span class="meta">{e(study.reference)}</span>' if study.reference else ""
    return (f'<section class="answer" id="{anchor}"><h2>{e(study.title)}{ref}</h2>'
            f'<div class="answer-grid"><div>{heads}{notes}</div>{key}</div></section>\n')
