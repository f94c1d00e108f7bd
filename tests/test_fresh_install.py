"""Installs that cannot rot: every module the code imports is declared in pyproject.toml, and imports.

A machine that already has a package (installed by hand, or left by an older release) passes any
test that merely uses it; a fresh install does not. So the imports are read from the source (ast),
each third-party top-level module is mapped to the distribution that provides it, and that
distribution must be a declared requirement of the part of the project that imports it. Then every
such module is really imported: a declared package whose own dependencies are broken (trafilatura
-> justext -> lxml.html.clean, which lxml 6 moved out) fails here instead of in the first upload.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
# What each part of the project may import: the core dependencies plus these extras.
PARTS = {
    "rag": ("ocr", "milvus"),  # the OCR reader and the Milvus backend import their extras lazily
    "app.py": (),
    "tests": ("test", "ocr", "milvus", "bench"),
    "benchmarks": ("bench", "test"),
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: tuple[str, ...]) -> set[str]:
    """Normalised distribution names of the core dependencies and the given extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return {_norm(re.match(r"[A-Za-z0-9_.\-]+", r.strip()).group(0)) for r in reqs}


def imports(source: str) -> set[str]:
    """Dotted names of the absolute imports in `source` (`from a.b import c` gives `a.b`)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def third_party(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] not in {"rag", "tests", "benchmarks", "__future__"}}


def part_imports(part: str) -> set[str]:
    path = ROOT / part
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    return third_party(set().union(*(imports(f.read_text("utf-8")) for f in files)))


def optional() -> set[str]:
    """Distributions declared only by extras: a machine may leave them out (`.[ocr]`, `.[milvus]`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return declared(tuple(project["optional-dependencies"])) - declared(())


def missing_extra(top: str) -> bool:
    """An extra's module that this machine did not install (named like its distribution)."""
    return not md.packages_distributions().get(top) and _norm(top) in optional()


def undeclared(names: set[str], allowed: set[str]) -> dict[str, str]:
    """Top-level module -> why it is not covered by `allowed` (installed by no declared distribution)."""
    providers = md.packages_distributions()
    out = {}
    for top in sorted({n.split(".")[0] for n in names}):
        dists = {_norm(d) for d in providers.get(top, [])}
        if not dists and _norm(top) in allowed & optional():
            continue  # an extra this machine left out: declared, just not installed
        if not dists:
            out[top] = "not installed (so not declared, or declared under another name)"
        elif not dists & allowed:
            out[top] = f"provided by {sorted(dists)}, which pyproject.toml does not declare"
    return out


def test_the_checker_flags_an_undeclared_import():
    # requests is installed here (a dependency of a dependency) but declared nowhere: exactly the trap.
    names = third_party(imports("import os\nimport numpy\nimport requests.adapters\nfrom rag import ask\n"))
    assert names == {"numpy", "requests.adapters"}
    assert set(undeclared(names, declared(()))) == {"requests"}
    assert undeclared({"numpy"}, declared(())) == {}
    assert "not installed" in undeclared({"surely_no_such_module_x"}, declared(()))["surely_no_such_module_x"]
    assert "rapidocr" in optional() and "numpy" not in optional()


@pytest.mark.parametrize("part", sorted(PARTS))
def test_every_import_is_declared(part):
    names = part_imports(part)
    assert names, f"no third-party import found in {part}: the checker reads nothing"
    assert undeclared(names, declared(PARTS[part])) == {}


def test_the_core_reads_the_imports_it_needs():
    names = {n.split(".")[0] for n in part_imports("rag")}
    # The readers and the storage: if these are not seen, the ast walk is broken, not the project clean.
    assert {"pypdfium2", "trafilatura", "docx", "jieba", "faiss", "numpy", "gradio", "fastapi"} <= names


@pytest.mark.slow  # imports torch, gradio, faiss... once each
@pytest.mark.parametrize("part", ["rag", "app.py"])
def test_every_imported_module_imports(part):
    """Import each dotted name for real: a declared package with a broken dependency fails here."""
    failed = {}
    for name in sorted(part_imports(part)):
        if missing_extra(name.split(".")[0]):
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    assert failed == {}


def test_saved_web_pages_are_read():
    """The failure a fresh machine met: trafilatura's extraction path (justext, lxml.html.clean)."""
    import trafilatura

    page = "<html><body><article><p>周口市今年新建口袋公园二十个，市民步行十分钟即可到达。</p></article></body></html>"
    assert "口袋公园" in (trafilatura.extract(page) or "")
