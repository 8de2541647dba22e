"""``hpc-seg report RUN``: one static HTML page (``RUN/report.html`` + ``RUN/report_files/``)
and its headlines as data (``RUN/summary.json``).

The page answers first: one section per study found in the run, each headline number beside
the published one with n, spread and a verdict in words, then the study's key figure. The
evidence follows, study by study: tables with units, rounded to at most 4 significant digits,
long ones folded with their CSV linked, each figure beside the table it is drawn from. Files no
study claims are shown by folder; stages and timings, jobs and data issues close the page.

The page is self-contained for offline reading, printing and archiving: inline CSS, no script,
no web font, no remote URL; images are PNG files next to it, referenced by relative paths, so
the folder pair can be zipped and mailed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hpc_seg import __version__
from hpc_seg.errors import InputError
from hpc_seg.report import collect, numbers
from hpc_seg.report.answer import answer_section
from hpc_seg.report.findings import FindingsFn, StudyFindings, collect_findings
from hpc_seg.report.html import FOLD_ROWS, MAX_ROWS, Images, code, e, figure, folded, link, table
from hpc_seg.report.study import study_sections
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1em auto;
max-width:80em;padding:0 1em;color:#222;line-height:1.35}
h1{font-size:1.3em;margin:0}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin:1.2em 0 .4em}
h3{font-size:1em;margin:1em 0 .3em}h4{font-size:.95em;margin:.8em 0 .2em}
table{border-collapse:collapse;margin:.4em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}.meta,.file,.source,.sub{color:#555;font-size:.8em}
figure{display:inline-block;margin:.4em .8em .4em 0;vertical-align:top;max-width:100%}
img{max-width:100%;max-height:34em;border:1px solid #ddd}
figcaption{font-size:.8em;color:#555;max-width:40em}code{background:#f3f3f3;padding:0 3px}
nav{font-size:.85em;margin:.3em 0}nav a{margin-right:.8em}
.answer{margin:0 0 .3em}.answer h2{margin:.5em 0 .2em}
.answer-grid{display:flex;gap:1em;align-items:flex-start}.answer-grid>div{flex:1 1 auto;min-width:0}
figure.key{flex:0 0 22%;margin:0}figure.key img{width:100%;max-height:8em;object-fit:contain}
table.headlines{font-size:.8em;width:100%;table-layout:fixed;line-height:1.25;margin:.2em 0}
table.headlines td,table.headlines th{padding:2px 5px}table.headlines th:nth-child(1){width:23%}
table.headlines th:nth-child(2){width:27%}table.headlines th:nth-child(3){width:16%}
table.headlines .v{font-size:1.2em;font-weight:600;font-variant-numeric:tabular-nums}
table.headlines td.verdict b{font-weight:600}.notes{font-size:.8em;color:#555;margin:.1em 0}
.nowrap{white-space:nowrap}ul.sources{font-size:.8em;color:#555;margin:.2em 0}
table.headlines .v{font-size:1.2em;font-weight:600;font-variant-numeric:tabular-nums}
table.headlines td.verdict b{font-weight:600}.notes{font-size:.8em;color:#555;margin:.2em 0}
section.evidence{margin-left:0}details{margin:.3em 0}summary{cursor:pointer;color:#333}
.kv span.k{color:#666}.caption{font-size:.85em;margin:.2em 0}
@media print{nav{display:none}body{max-width:none;margin:0;font-size:9.5pt}
h2,h3{break-after:avoid}figure,tr,table.headlines{break-inside:avoid}
img{max-height:22em}figure.key img{max-height:10em}a{color:inherit;text-decoration:none}
details::details-content{content-visibility:visible;display:block}
.scroll{overflow:visible}}
"""


class _Ids:
    """Unique element ids and section titles for one page."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.titles: set[str] = set()

    def id(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
        out, n = base, 1
        while out in self.ids:
            n += 1
            out = f"{base}-{n}"
        self.ids.add(out)
        return out

    def title(self, text: str, where: str = "") -> str:
        out = text if text not in self.titles or not where else f"{text} ({where})"
        n = 1
        while out in self.titles:
            n += 1
            out = f"{text} ({n})"
        self.titles.add(out)
        return out


def _table_block(df: pd.DataFrame | None, csv: Path | None, page_dir: Path, tid: str,
                 id_columns: Sequence[str] = (), decimals: dict | None = None,
                 fold: bool | None = None, rows_total: int | None = None,
                 run: Path | None = None) -> str:
    rows_total = rows_total if rows_total is not None else (0 if df is None else len(df))
    file = f'<p class="file">file: {link(csv, page_dir)}</p>' if csv is not None else ""
    if df is None:
        return file
    if df.empty:
        return file + "<p><em>no rows</em></p>"
    body = table(df, table_id=tid, id_columns=list(id_columns), decimals=decimals, run=run)
    shown = min(len(df), MAX_ROWS)
    if (fold if fold is not None else rows_total > FOLD_ROWS):
        what = f"{numbers.count(rows_total)} rows" + (
            f", the first {shown} shown; the CSV has all" if shown < rows_total else "")
        return file + folded(f"table ({e(what)})", body)
    return file + body


def _optuna(db: Path, run: Path, files_dir: Path, images: Images, ids: _Ids, n: int) -> str:
    try:
        secs = study_sections(db, files_dir, f"study{n}")
    except Exception as exc:  # noqa: BLE001 - a broken storage must not lose the rest of the page
        return f"<p>{code(db.name)}: cannot read the study ({e(type(exc).__name__)}: {e(exc)})</p>"
    out = []
    for s in secs:
        tid = ids.id(f"trials-{s.name}")
        best = "<p>no COMPLETE trial yet</p>"
        if s.best:
            b = pd.DataFrame([s.best])
            best = table(b, table_id=ids.id(f"best-{s.name}"), id_columns=["number"])
        figs = "".join(figure(images, p, f"{s.name}: {title}", table_id=tid) for title, p in s.images)
        notes = "".join(f'<p class="notes">{e(x)}</p>' for x in s.notes)
        trials = s.trials.drop(columns=[c for c in ("checkpoint", "model_path", "tune_trial_id")
                                        if c in s.trials.columns])
        out.append(
            f"<h4>{e(ids.title(f'Best trial of study {s.name}'))}</h4>"
            f'<p class="file">storage: {code(db.relative_to(run) if db.is_relative_to(run) else db)}'
            f" (open with <code>hpc-seg study show</code> or optuna-dashboard)</p>{best}"
            f"<h4>{e(ids.title(f'Trials of study {s.name}'))}</h4>"
            + _table_block(trials, None, run, tid, id_columns=["number"], fold=len(trials) > FOLD_ROWS)
            + figs + notes)
    return "\n".join(out)


def _evidence(study: StudyFindings, anchor: str, run: Path, page_dir: Path, files_dir: Path,
              images: Images, ids: _Ids, shown: set[Path], n_optuna: list[int]) -> str:
    parts = []
    sources = [f"<li>{e(h.label)}: {e(h.source)}</li>" for h in study.headlines if h.source]
    if sources:
        parts.append('<p class="caption">Where the headlines come from:</p>'
                     f'<ul class="sources">{"".join(sources)}</ul>')
    for ev in study.evidence:
        title = ids.title(ev.title, study.title)
        tid = ids.id(f"{study.key}-{ev.title}")
        caption = f'<p class="caption">{e(ev.caption)}</p>' if ev.caption else ""
        body = ""
        if ev.table is not None or ev.csv is not None:
            body = _table_block(ev.table, ev.csv, page_dir, tid, ev.id_columns, ev.decimals, ev.fold,
                                run=run)
        if ev.optuna is not None:
            n_optuna[0] += 1
            body += _optuna(ev.optuna, run, files_dir, images, ids, n_optuna[0])
        also = [link(p, page_dir) for p in ev.covers
                if Path(p).is_file() and Path(p).suffix != ".png"]
        if also:
            body += f'<p class="file">also: {", ".join(also)}</p>'
        figs = "".join(figure(images, f.path, f.caption or f.path.name,
                              table_id=tid if ev.table is not None else "")
                       for f in ev.figures if Path(f.path).is_file())
        parts.append(f'<section class="evidence" id="{ids.id(title)}"><h3>{e(title)}</h3>'
                     f"{caption}{body}{figs}</section>")
    # files in the study's folder that no evidence names (e.g. tables a newer evaluation adds)
    rest = _generic_blocks(run, Path(study.folder), page_dir, images, ids, shown)
    if rest:
        parts.append(rest)
    return (f'<section id="{anchor}"><h2>{e(ids.title("Evidence: " + study.title))}</h2>\n'
            + "\n".join(parts) + "</section>\n")


def _generic_blocks(run: Path, under: Path, page_dir: Path, images: Images, ids: _Ids,
                    shown: set[Path]) -> str:
    """Tables and figures under ``under`` not shown yet, one block per folder."""
    if not under.is_dir():
        return ""
    tables = collect.csv_tables(under, exclude=frozenset(shown))
    figs = collect.figures(under, exclude=frozenset(shown))
    by_folder: dict[Path, tuple[list, list]] = {}
    for t in tables:
        by_folder.setdefault(t.path.parent, ([], []))[0].append(t)
    for f in figs:
        by_folder.setdefault(f.parent, ([], []))[1].append(f)
    out = []
    for folder in sorted(by_folder, key=lambda p: (len(p.parts), str(p))):
        ts, fs = by_folder[folder]
        rel = folder.relative_to(run).as_posix() if folder.is_relative_to(run) else str(folder)
        rel = rel if rel != "." else "run folder"
        blocks, first = [], ""
        for t in ts:
            shown.add(t.path.resolve())
            tid = ids.id(f"{rel}-{t.path.stem}")
            first = first or tid
            blocks.append(f"<h4>{e(ids.title(t.title, rel))}</h4>" + _table_block(
                t.frame, t.path, page_dir, tid, rows_total=t.rows_total, run=run))
        for f in fs:
            shown.add(f.resolve())
            blocks.append(figure(images, f, f.relative_to(run).as_posix()
                                 if f.is_relative_to(run) else f.name, table_id=first))
        title = ids.title(f"Files in {rel}")
        out.append(f'<section class="evidence" id="{ids.id(title)}"><h3>{e(title)}</h3>'
                   + "\n".join(blocks) + "</section>")
    return "\n".join(out)


def _stages(rows: list[collect.StageRow], run: Path) -> str:
    if not rows:
        return ""
    trs = []
    for i, r in enumerate(rows, 1):
        outs = []
        for k, text, is_path in r.outputs:
            shown = code(text) if is_path else e(text)
            outs.append(f'<span class="k">{e(k)}</span> {shown}')
        cell = " · ".join(outs[:6])
        if len(outs) > 6:
            cell += " " + folded(f"{len(outs) - 6} more", "<br>".join(outs[6:]))
        when = (f'<time>{r.finished.isoformat(sep=" ", timespec="seconds")}</time>'
                if r.finished else "")
        trs.append(f'<tr><td class="num">{i}</td><td>{code(r.stage)}</td>'
                   f'<td class="num">{e(numbers.duration(r.seconds))}</td>'
                   f'<td class="nowrap">{when}</td>'
                   f'<td class="kv">{cell}</td></tr>')
    total = sum(r.seconds or 0 for r in rows)
    return ('<table><thead><tr><th>#</th><th>stage</th><th>took</th><th>finished (local time)</th>'
            "<th>outputs (paths relative to the run folder)</th></tr></thead><tbody>"
            + "\n".join(trs) + "</tbody></table>"
            f"<p>{len(rows)} stage(s), {e(numbers.duration(total))} in all (a re-run loads "
            "finished stages from <code>.stages/</code>; their time is from the run that did them)</p>")


def _dashboards(run: Path, storages: list[Path]) -> str:
    items = []
    for db in storages:
        rel = db.relative_to(run) if db.is_relative_to(run) else db
        items.append(f"<li>Optuna dashboard for {code(rel)}: run <code>hpc-seg study "
                     f"dashboard {e(db)}</code>, then open <code>http://127.0.0.1:8080/dashboard/"
                     "</code>. It binds 127.0.0.1 only; from another machine tunnel it with "
                     "<code>ssh -L 8080:127.0.0.1:8080 HOST</code>.</li>")
    items.append("<li>Ray dashboard: exists only while a search (or a Ray cluster) runs; its "
                 "address is printed when the search starts (default <code>http://127.0.0.1:8265"
                 "</code>, 127.0.0.1 only; tunnel with <code>ssh -L 8265:127.0.0.1:8265 HOST</code>)."
                 "</li>")
    items.append(f"<li>SLURM jobs of this run: <code>hpc-seg jobs list {e(run)}</code>; "
                 "logs with <code>hpc-seg jobs logs</code>.</li>")
    return "<ul>" + "\n".join(items) + "</ul>"


def summary_data(run: Path, findings: list[StudyFindings], stages: list[collect.StageRow],
                 title: str) -> dict[str, Any]:
    """What ``summary.json`` holds: the headlines per study, and the stages with their times."""
    def rel(p: Path | None) -> str | None:
        if p is None:
            return None
        p = Path(p).resolve()
        return p.relative_to(run).as_posix() if p.is_relative_to(run) else str(p)

    return {
        "run": str(run), "title": title, "hpc_seg": __version__,
        "written": datetime.now().astimezone().isoformat(timespec="seconds"),
        "studies": [{"key": s.key, "title": s.title, "reference": s.reference,
                     "folder": rel(s.folder), "notes": s.notes,
                     "key_figure": rel(s.key_figure.path) if s.key_figure else None,
                     "headlines": [h.to_dict() for h in s.headlines]} for s in findings],
        "stages": [{"stage": r.stage, "seconds": r.seconds,
                    "finished": r.finished.isoformat(timespec="seconds") if r.finished else None,
                    "outputs": {k: t for k, t, _ in r.outputs}} for r in stages],
        "total_seconds": sum(r.seconds or 0 for r in stages),
    }


def build_report(run: str | Path, out: str | Path | None = None, *,
                 studies: Sequence[FindingsFn] = (),
                 findings: list[StudyFindings] | None = None, title: str | None = None) -> Path:
    """Write the report of run folder ``run`` and ``summary.json`` beside it; return the HTML
    path (default RUN/report.html).

    ``studies`` are the studies' findings functions (``hpc_seg.pipeline.registry.FINDINGS``);
    ``findings`` (already collected) take their place. Without either the page is generic.
    """
    run = Path(run).resolve()
    if not run.is_dir():
        raise InputError(f"{run}: run folder not found")
    out = Path(out).resolve() if out else run / "report.html"
    page_dir = out.parent
    files_dir = page_dir / (out.name.removesuffix(".html") + "_files")
    if files_dir.exists():
        shutil.rmtree(files_dir)    # images of an older report would otherwise linger
    images = Images(run, files_dir)
    if findings is None:
        findings = collect_findings(run, studies)
    title = title or run.name
    ids = _Ids()
    shown: set[Path] = set()
    for s in findings:
        shown |= s.files()

    answers, evidence, nav = [], [], []
    anchors = [(ids.id(f"answer-{s.key}"), ids.id(f"evidence-{s.key}")) for s in findings]
    for s, (a, ev) in zip(findings, anchors):
        answers.append(answer_section(s, a, ev, images))
        nav.append((a, s.title))
    n_optuna = [0]
    for s, (a, ev) in zip(findings, anchors):
        evidence.append(_evidence(s, ev, run, page_dir, files_dir, images, ids, shown, n_optuna))
    claimed_dbs = {e_.optuna.resolve() for s in findings for e_ in s.evidence if e_.optuna}
    storages = collect.study_storages(run)
    others = []
    for db in storages:
        if db.resolve() in claimed_dbs:
            continue
        n_optuna[0] += 1
        others.append(f'<section class="evidence" id="{ids.id("optuna-" + str(n_optuna[0]))}">'
                      f"<h3>{e(ids.title('Optuna study ' + db.parent.name))}</h3>"
                      + _optuna(db, run, files_dir, images, ids, n_optuna[0]) + "</section>")
    generic = _generic_blocks(run, run, page_dir, images, ids, shown)
    if generic or others:
        other_id = ids.id("other-files")
        heading = "Other tables and figures" if findings else "Tables and figures"
        evidence.append(f'<section id="{other_id}"><h2>{e(ids.title(heading))}</h2>\n'
                        + "\n".join(others) + generic + "</section>\n")
        nav.append((other_id, heading))

    appendix = []
    stage_rows = collect.stage_records(run)
    if stage_rows:
        sid = ids.id("appendix-stages")
        appendix.append(f'<section id="{sid}"><h2>Appendix: stages and timings</h2>'
                        + _stages(stage_rows, run) + "</section>")
        nav.append((sid, "Stages and timings"))
    jobs = collect.lineage_jobs(run)
    if len(jobs):
        jid = ids.id("appendix-jobs")
        appendix.append(f'<section id="{jid}"><h2>Appendix: SLURM and local jobs (lineage)</h2>'
                        + table(jobs, table_id=ids.id("jobs-table"),
                                id_columns=["run", "job_id", "name", "node", "started_at",
                                            "ended_at", "exit_reason"])
                        + '<p class="notes">wall_s: seconds from start to end</p></section>')
        nav.append((jid, "Jobs"))
    issues = collect.ingest_issues(run)
    if len(issues):
        iid = ids.id("appendix-issues")
        appendix.append(f'<section id="{iid}"><h2>Appendix: data issues by problem</h2>'
                        + table(issues, table_id=ids.id("issues-table"), id_columns=["table"])
                        + "</section>")
        nav.append((iid, "Data issues"))
    did = ids.id("appendix-dashboards")
    appendix.append(f'<section id="{did}"><h2>Appendix: dashboards</h2>'
                    + _dashboards(run, storages) + "</section>")

    total = sum(r.seconds or 0 for r in stage_rows)
    when = datetime.now().astimezone()
    meta = [f"run folder {code(run)}"]
    if stage_rows:
        meta.insert(0, f"{len(stage_rows)} stages, {e(numbers.duration(total))} of stage time")
    meta.append(f'written <time>{e(when.isoformat(sep=" ", timespec="seconds"))}</time> by '
                f"hpc-seg {e(__version__)}")
    if not findings:
        meta.append("no study recognised its results here: tables and figures are shown by folder")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hpc-seg report: {e(title)}</title><style>{CSS}</style></head><body>\n"
            f"<h1>{e(title)}: what this run found</h1><p class=\"meta\">{' · '.join(meta)}</p>\n"
            "<nav>" + "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in nav) + "</nav>\n"
            + "".join(answers) + "".join(evidence) + "".join(appendix) + "</body></html>\n")
    atomic_write_bytes(page.encode(), out)
    summary = summary_data(run, findings, stage_rows, title)
    atomic_write_bytes((json.dumps(summary, indent=1) + "\n").encode(), page_dir / SUMMARY_NAME)
    return out
