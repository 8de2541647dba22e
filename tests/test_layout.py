"""The package layout's rules (README "Where things live"): import-linter contracts, no import
circles, one package that knows both studies, and study folders without study prefixes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PREFIXES = {"cardiac": ("cine_",), "hadnet": ("hadnet_", "brats_")}


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    run = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle():
    # Package __init__ modules are empty or re-export nothing, so module-level cycles are real ones.
    assert _cycles(grimp.build_graph("hpc_seg")) == []


def test_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_only_the_pipeline_knows_both_studies():
    graph = grimp.build_graph("hpc_seg")
    both = []
    for module in sorted(graph.modules):
        if module.startswith("hpc_seg.pipeline"):
            continue
        studies = {m.split(".")[1] for m in graph.find_modules_directly_imported_by(module)
                   if m.split(".")[1:2] in (["cardiac"], ["hadnet"])}
        if len(studies) == 2:
            both.append(module)
    assert both == []


def test_study_folders_carry_no_study_prefix():
    offenders = [str(p.relative_to(REPO)) for study, prefixes in PREFIXES.items()
                 for p in (REPO / "hpc_seg" / study).rglob("*.py") if p.name.startswith(prefixes)]
    assert offenders == []


def test_only_the_checkpoint_module_calls_torch_load():
    """Every model, checkpoint and weights file is loaded by runtime.checkpoint.load_weights
    (weights_only, one-line refusals naming the file); a second torch.load would bypass both."""
    import re

    call = re.compile(r"\btorch\.load\s*\(")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "hpc_seg").rglob("*.py")
                 if p.name != "checkpoint.py" and call.search(p.read_text())]
    assert offenders == []
