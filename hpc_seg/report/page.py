"""``hpc-seg report RUN``: one static HTML page (``RUN/report.html`` + ``RUN/report_files/``).

The page is self-contained for offline reading and archiving: inline CSS, no script, no web font,
no remote URL; images are PNG files next to it, referenced by relative paths, so the folder pair
can be zipped and mailed.
"""

from __future__ import annotations

import html
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from hpc_seg import __version__
from hpc_seg.errors import InputError
from hpc_seg.report import collect
from hpc_seg.report.study import study_sections
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;
max-width:75em;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
h3{font-size:1em}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.scroll{overflow-x:auto}.path{color:#666;font-size:.8em}
figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.8em;color:#555}code{background:#f3f3f3;padding:0 3px}nav a{margin-right:1em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(df: pd.DataFrame) -> str:
    if df is None or df.empty:
        return "<p><em>none</em></p>"
    # wide tables (a study's trials) scroll inside their box instead of widening the page
    return '<div class="scroll">' + df.to_html(index=False, escape=True, na_rep="", border=0,
                                                float_format=lambda v: f"{v:.4g}") + "</div>"


class _Images:
    """Copies figures into ``report_files/`` under unique names; gives relative paths."""

    def __init__(self, run: Path, files_dir: Path):
        self.run, self.dir = run, files_dir
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, src: Path) -> str:
        src = Path(src)
        if src.parent.resolve() == self.dir.resolve():     # drawn for the report (Optuna plots)
            return f"{self.dir.name}/{src.name}"
        rel = src.relative_to(self.run) if src.is_relative_to(self.run) else Path(src.name)
        name = "__".join(rel.parts)
        dst = self.dir / name
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        return f"{self.dir.name}/{name}"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>\n{body}\n</section>\n'


def _dashboards(run: Path, storages: list[Path]) -> str:
    items = []
    for db in storages:
        items.append(f"<li>Optuna dashboard for <code>{_e(db)}</code>: run <code>hpc-seg study "
                     f"dashboard {_e(db)}</code>, then open <code>http://127.0.0.1:8080/dashboard/"
                     "</code>. It binds 127.0.0.1 only; from another machine tunnel it with "
                     "<code>ssh -L 8080:127.0.0.1:8080 HOST</code>.</li>")
    items.append("<li>Ray dashboard: exists only while a search (or a Ray cluster) runs; its "
                 "address is printed when the search starts (default <code>http://127.0.0.1:8265"
                 "</code>, 127.0.0.1 only; tunnel with <code>ssh -L 8265:127.0.0.1:8265 HOST</code>)."
                 "</li>")
    items.append(f"<li>SLURM jobs of this run: <code>hpc-seg jobs list {_e(run)}</code>; "
                 "logs with <code>hpc-seg jobs logs</code>.</li>")
    return "<ul>" + "\n".join(items) + "</ul>"


def build_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of run folder ``run``; return the HTML path (default RUN/report.html)."""
    run = Path(run).resolve()
    if not run.is_dir():
        raise InputError(f"{run}: run folder not found")
    out = Path(out).resolve() if out else run / "report.html"
    files_dir = out.parent / (out.name.removesuffix(".html") + "_files")
    if files_dir.exists():
        shutil.rmtree(files_dir)    # images of an older report would otherwise linger
    images = _Images(run, files_dir)
    parts: list[str] = []
    nav: list[tuple[str, str]] = []

    def add(anchor: str, title: str, body: str) -> None:
        nav.append((anchor, title))
        parts.append(_section(anchor, title, body))

    stages = collect.stage_records(run)
    if len(stages):
        total = pd.to_numeric(stages["seconds"], errors="coerce").sum()
        add("stages", "Stages and timings",
            _table(stages) + f"<p>total {total:.1f} s over {len(stages)} stage(s)</p>")
    tables = collect.csv_tables(run)
    if tables:
        body = []
        for t in tables:
            more = "" if t.rows_total <= len(t.frame) else \
                f" (first {len(t.frame)} of {t.rows_total} rows)"
            body.append(f"<h3>{_e(t.title)}</h3><p class=\"path\">{_e(t.path.relative_to(run))}"
                        f"{_e(more)}</p>{_table(t.frame)}")
        add("tables", "Tables", "\n".join(body))
    storages = collect.study_storages(run)
    study_html = []
    for n, db in enumerate(storages):
        try:
            secs = study_sections(db, files_dir, f"study{n}")
        except Exception as exc:  # noqa: BLE001 - a broken storage must not lose the rest of the page
            study_html.append(f"<p>{_e(db)}: cannot read the study ({_e(type(exc).__name__)}: "
                              f"{_e(exc)})</p>")
            continue
        for s in secs:
            figs = "".join(f'<figure><img src="{_e(images.add(p))}" alt="{_e(title)}">'
                           f"<figcaption>{_e(title)}</figcaption></figure>" for title, p in s.images)
            best = _table(pd.DataFrame([s.best])) if s.best else "<p>no COMPLETE trial yet</p>"
            notes = "".join(f"<p><em>{_e(x)}</em></p>" for x in s.notes)
            study_html.append(
                f"<h3>Study {_e(s.name)}</h3><p class=\"path\">{_e(db.relative_to(run))}</p>"
                f"<h4>Best trial</h4>{best}{figs}{notes}"
                f"<h4>Pruned or failed trials</h4>{_table(s.not_complete)}"
                f"<h4>All trials</h4>{_table(s.trials)}")
    if study_html:
        add("optuna", "Optuna study", "\n".join(study_html))
    jobs = collect.lineage_jobs(run)
    if len(jobs):
        add("jobs", "SLURM and local jobs (lineage)", _table(jobs))
    issues = collect.ingest_issues(run)
    if len(issues):
        add("issues", "Ingest issues by problem", _table(issues))
    figs = collect.figures(run)
    if figs:
        add("figures", "Figures", "\n".join(
            f'<figure><img src="{_e(images.add(p))}" alt="{_e(p.name)}"><figcaption>'
            f"{_e(p.relative_to(run))}</figcaption></figure>" for p in figs))
    add("dashboards", "Dashboards", _dashboards(run, storages))
    when = datetime.now(timezone.utc).isoformat(sep=" ", timespec="seconds")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hpc-seg report: {_e(run.name)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>hpc-seg report: {_e(run.name)}</h1><p class=\"path\">{_e(run)} &middot; "
            f"written {_e(when)} by hpc-seg {_e(__version__)}</p>\n<nav>"
            + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in nav) + "</nav>\n"
            + "".join(parts) + "</body></html>\n")
    atomic_write_bytes(page.encode(), out)
    return out
