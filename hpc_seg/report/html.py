"""HTML pieces of the report page: escaped text, tables with per-column rounding, figures.

Conventions the page's tests rely on: identifiers (case ids, trial numbers, paths) are in
``class="id"`` cells or ``<code>``; a figure drawn from a table names it in ``data-table``; a
table longer than :data:`FOLD_ROWS` rows sits in a ``<details>`` with the CSV linked.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import pandas as pd

from hpc_seg.report import numbers

FOLD_ROWS = 12        # longer tables are folded
MAX_ROWS = 50         # at most this many rows are shown; the CSV has the rest

#: column names that hold identifiers, shown as they are (no rounding)
ID_NAMES = re.compile(r"(^|_)(id|ids|file|files|image|case|patient|subject|stack|series|uid|"
                      r"trial|number|name|path|job|node|seed|frame|slice|fold)($|_)",
                      re.IGNORECASE)


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def code(text: object) -> str:
    return f"<code>{e(text)}</code>"


def link(target: Path, page_dir: Path, text: str | None = None) -> str:
    """A relative link from the page to ``target`` (a file of the run)."""
    rel = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return f'<a href="{e(Path(rel).as_posix())}">{code(text or Path(rel).as_posix())}</a>'


def is_id_column(name: object) -> bool:
    return bool(ID_NAMES.search(str(name)))


def _header(columns: pd.Index) -> str:
    if isinstance(columns, pd.MultiIndex) and columns.nlevels == 2:
        top, spans = [], []
        for name in columns.get_level_values(0):
            if spans and spans[-1][0] == name:
                spans[-1][1] += 1
            else:
                spans.append([name, 1])
        for name, span in spans:
            top.append(f'<th colspan="{span}">{e(name)}</th>' if span > 1 else f"<th>{e(name)}</th>")
        sub = "".join(f"<th>{e(b)}</th>" for b in columns.get_level_values(1))
        return f"<thead><tr>{''.join(top)}</tr><tr>{sub}</tr></thead>"
    return "<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr></thead>"


def _relative(cells: list[str], run: Path | None) -> list[str]:
    """Absolute paths inside ``run`` as paths relative to it."""
    if run is None:
        return cells
    prefix = str(run).rstrip("/") + "/"
    return [c[len(prefix):] if c.startswith(prefix) else c for c in cells]


def table(df: pd.DataFrame | None, *, table_id: str = "", id_columns: tuple | list = (),
          decimals: dict | None = None, max_rows: int = MAX_ROWS, run: Path | None = None) -> str:
    """``df`` as an HTML table: numbers rounded per column (<= 4 significant digits),
    identifier columns as they are, paths inside ``run`` relative to it, at most ``max_rows``
    rows."""
    if df is None or df.empty:
        return "<p><em>none</em></p>"
    shown = df.head(max_rows)
    decimals = decimals or {}
    ids = set(id_columns)
    cols = []
    for c in shown.columns:
        label = c[-1] if isinstance(c, tuple) else c
        is_id = c in ids or label in ids or (not isinstance(c, tuple) and is_id_column(c)
                                             and c not in decimals)
        if is_id:
            cells = [numbers._cell(v) for v in shown[c]]
        else:
            cells = numbers.column(shown[c], decimals.get(c, decimals.get(label)))
        cols.append((is_id, _relative(cells, run)))
    body = []
    for i in range(len(shown)):
        tds = []
        for is_id, cells in cols:
            text = cells[i]
            cls = ' class="id"' if is_id else (' class="num"' if _numeric(text) else "")
            tds.append(f"<td{cls}>{e(text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    tid = f' id="{e(table_id)}"' if table_id else ""
    return (f'<div class="scroll"><table{tid}>{_header(shown.columns)}<tbody>'
            + "\n".join(body) + "</tbody></table></div>")


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.]+(e-?\d+)?( ?[%kMG])?", text)) or text == numbers.DASH


def folded(summary: str, inner: str, open_: bool = False) -> str:
    return (f"<details{' open' if open_ else ''}><summary>{summary}</summary>\n{inner}\n"
            "</details>")


class Images:
    """Copies figures into the page's ``*_files/`` folder under unique names."""

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


def figure(images: Images, path: Path, caption: str, *, table_id: str = "",
           key: bool = False, href: str = "") -> str:
    src = e(images.add(path))
    img = f'<img src="{src}" alt="{e(caption)}">'
    if href:
        img = f'<a href="{e(href)}">{img}</a>'
    data = f' data-table="{e(table_id)}"' if table_id else ""
    cls = ' class="key"' if key else ""
    return f"<figure{cls}{data}>{img}<figcaption>{e(caption)}</figcaption></figure>"
