"""What a report page must be, checked in the browser: no Python reprs, numbers rounded,
figures beside their tables, unique titles, the headlines on the first screen.

``FACTS_JS`` gathers facts from the loaded page; :func:`page_problems` turns them into a list
of problems (empty: the page passes); :func:`shown_headlines` gives each headline's value as
the page prints it.
"""

from __future__ import annotations

import re
from typing import Any

#: facts gathered in the page: texts outside identifiers, headline rows, figures and titles
FACTS_JS = r"""(() => {
  const skip = 'code, time, .id, script, style, title';
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.textContent.trim();
    if (t && !n.parentElement.closest(skip)) texts.push(t);
  }
  const attrs = Array.from(document.querySelectorAll('[alt], [title]'))
    .map(el => (el.getAttribute('alt') || '') + ' ' + (el.getAttribute('title') || ''));
  const rows = Array.from(document.querySelectorAll('tr[data-key]')).map(tr => ({
    key: tr.dataset.key,
    value: (tr.querySelector('.hl-value .v') || {}).textContent || null,
    published: (tr.querySelector('.hl-published .v') || {}).textContent || null,
    text: tr.innerText,
    bottom: tr.getBoundingClientRect().bottom + window.scrollY}));
  const figures = Array.from(document.querySelectorAll('figure')).map(f => {
    const section = f.closest('section');
    const tid = f.dataset.table || '';
    return {key: f.classList.contains('key'), table: tid,
            section: section ? section.id : null,
            same_section: tid ? !!(section && section.querySelector('table#' + CSS.escape(tid)))
                              : null,
            section_has_table: !!(section && section.querySelector('table'))};
  });
  const folded = Array.from(document.querySelectorAll('details')).map(d => {
    const t = d.querySelector('table');
    return t ? t.checkVisibility() : null; });
  return {texts, attrs, rows, figures, folded, height: window.innerHeight, width: window.innerWidth,
          titles: Array.from(document.querySelectorAll('h2, h3, h4')).map(h => h.textContent.trim()),
          scroll_width: document.documentElement.scrollWidth};
})()"""

#: what a Python object's repr looks like in text
REPR = [re.compile(p) for p in (
    r"\b[A-Z][A-Za-z0-9_]*\((?!\))",        # ClassName(  (a function or class call)
    r"\{'", r"\['", r"\[np\.", r"\bnp\.\w+\(", r"\barray\(", r"\bdtype=", r"\w+='",
    r"<[a-z_.]+ object at 0x", r"\bPosixPath\b", r"\bnan\b", r"\bNone\b")]

#: a number standing alone (not part of a name such as HD95, trial-0002, r34_p05_s256)
NUMBER = re.compile(r"(?<![\w.\-/])[-+−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w\-/]|\.\d)")


def significant_digits(token: str) -> int:
    """Significant digits of a printed number (leading zeros do not count)."""
    mantissa = re.split(r"[eE]", token.lstrip("+-−"))[0]
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits)


def page_problems(facts: dict[str, Any], first_screen: bool = True) -> list[str]:
    """Every way the page falls short; [] when it passes."""
    problems = []
    for text in facts["texts"] + facts["attrs"]:
        for pattern in REPR:
            if pattern.search(text):
                problems.append(f"repr-like text {pattern.pattern!r}: {text[:120]!r}")
        for token in NUMBER.findall(text):
            if significant_digits(token) > 4:
                problems.append(f"number with more than 4 significant digits: {token} in "
                                f"{text[:120]!r}")
    for fig in facts["figures"]:
        if fig["key"]:
            continue
        if fig["table"] and not fig["same_section"]:
            problems.append(f"figure of table {fig['table']} is not in its section {fig['section']}")
        if not fig["table"] and fig["section_has_table"]:
            problems.append(f"figure in section {fig['section']} names no table")
    seen = set()
    for title in facts["titles"]:
        if title in seen:
            problems.append(f"title used twice: {title!r}")
        seen.add(title)
    if first_screen:
        for row in facts["rows"]:
            if row["bottom"] > facts["height"]:
                problems.append(f"headline {row['key']} ends at {row['bottom']:.0f} px, below "
                                f"the first screen ({facts['height']} px)")
    if facts["scroll_width"] > facts["width"]:
        problems.append(f"the page is wider than the window ({facts['scroll_width']} px)")
    return problems


def shown_headlines(facts: dict[str, Any]) -> dict[str, str | None]:
    """Headline key -> its value as printed (None where the page says n/a)."""
    return {r["key"]: (None if r["value"] in (None, "n/a") else r["value"]) for r in facts["rows"]}
