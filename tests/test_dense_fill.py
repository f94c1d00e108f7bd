"""Serve first, embed after: keywords at once, the dense leg filled in later through the vector cache."""

import sqlite3
import subprocess
import sys
import time

import pytest

from rag import Settings, build_index, load_index, open_index
from rag.api_models import InfoOut
from rag.index import DenseUnavailable
from rag.notices import NoticeCode, render
from rag.results import DenseProgress
from rag.ui import status_markdown

from .conftest import ROOT, SEEDS

QUESTION = "许寨社区有多少名党员？"
EXTRA = "周口新建天文馆\n本报讯（记者 王晨）周口天文馆日前建成，可容纳三百名观众，设有球幕影厅和天象仪。\n"


def _cache_rows(folder) -> int:
    if not (folder / "embeddings.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(folder / "embeddings.sqlite") as db:
            return db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:  # created, its table not yet
        return 0


def _env(**extra):
    import os

    return {**os.environ, "OMP_WAIT_POLICY": "passive", **extra}


def test_progress_text_in_both_languages():
    assert DenseProgress(0.123, 170).text() == "语义索引 12%（约 3 分钟）"
    assert DenseProgress(0.123, 170).text("en") == "Semantic index 12% (about 3 min)"
    assert DenseProgress(0.0).text() == "语义索引 0%"
    assert DenseProgress(0.999, 5).text("en") == "Semantic index 99% (about 1 min)"


def test_build_serves_keywords_first_and_the_fill_embeds_what_a_full_build_would(tmp_path, minilm_path):
    folder = tmp_path / "index"
    built = subprocess.run([sys.executable, "-m", "rag", "-q", "build", "--docs", str(SEEDS), "--index", str(folder),
                            "--model", minilm_path], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "--wait-dense" in built.stderr

    index = load_index(folder)  # read-only: serves keywords, never embeds
    info = index.info()
    assert not info.dense and info.dense_progress == DenseProgress(0.0) and "语义索引 0%" in info.dense_reason
    passages = index.retrieve(QUESTION, k=3)
    assert passages.mode == "lexical" and "语义索引 0%" in passages.notice
    assert passages[0].source == "000_511f53cd465d0282.txt"
    with pytest.raises(DenseUnavailable, match="语义索引"):
        index.retrieve(QUESTION, mode="dense")
    # the status says so: UI, API (both languages), and an English question's notice
    assert "语义索引 0%，完成前仅使用关键词检索" in status_markdown(index, info)
    dense = InfoOut.of(info, read_only=False).dense
    assert (dense.progress, dense.progress_text, dense.progress_text_en) == (0.0, "语义索引 0%", "Semantic index 0%")
    assert [n.code for n in passages.notices] == [NoticeCode.DENSE_FILLING]
    assert render(passages.notices, "en").startswith("Semantic index 0%; until it is complete")
    index.close()

    settings = Settings(docs_dir=SEEDS, index_dir=folder, model=minilm_path)
    index = open_index(settings, progress=False)  # not in the background: fills in before it returns
    info = index.info()
    assert info.dense and info.dense_progress is None
    assert index.manifest["dense"]["self_test"] is not None
    filled = index.retrieve(QUESTION, k=5, mode="dense")
    similarity = index.search(QUESTION, k=3, mode="dense").similarity
    index.close()

    # A build that waits, over the same cache, embeds nothing: the fill embedded exactly its texts.
    rebuilt = build_index(SEEDS, folder, model=minilm_path, progress=False)
    timings = rebuilt.manifest["timings"]
    assert timings["embedded"] == 0 and timings["sentences_embedded"] == 0
    assert timings["cached"] == info.chunks and timings["sentences_cached"] > info.chunks
    waited = rebuilt.retrieve(QUESTION, k=5, mode="dense")
    assert [p.chunk_id for p in waited] == [p.chunk_id for p in filled]
    assert [p.score for p in waited] == pytest.approx([p.score for p in filled], abs=1e-5)
    assert rebuilt.search(QUESTION, k=3, mode="dense").similarity == pytest.approx(similarity, abs=1e-3)
    rebuilt.close()


KEEP_OPEN = """
import sys, time
from rag import Settings, open_index
index = open_index(Settings(docs_dir=sys.argv[1], index_dir=sys.argv[2], model=sys.argv[3]), progress=False,
                   background_dense=True)
print("open", flush=True)
time.sleep(600)
"""


def test_a_killed_background_fill_loses_no_stored_vector(tmp_path, minilm_path):
    folder = tmp_path / "index"
    build_index(SEEDS, folder, model=minilm_path, progress=False, wait_dense=False).close()
    script = tmp_path / "keep_open.py"
    script.write_text(KEEP_OPEN)
    proc = subprocess.Popen([sys.executable, str(script), str(SEEDS), str(folder), minilm_path], cwd=ROOT, env=_env(PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"  # keyword search served before any vector
        deadline = time.monotonic() + 300
        while _cache_rows(folder) < 64:
            assert time.monotonic() < deadline and proc.poll() is None, "the background fill never stored a vector"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    stored = _cache_rows(folder)

    index = open_index(Settings(docs_dir=SEEDS, index_dir=folder, model=minilm_path), progress=False)
    assert index.info().dense and index.dense_progress is None
    total = _cache_rows(folder)
    assert 64 <= stored < total  # killed midway (532 texts; it was seen at 64)
    assert index._filler._embedded == total - stored  # the rest, and only the rest, was embedded
    assert index.retrieve(QUESTION, k=3, mode="dense")
    index.close()


def test_an_upload_is_found_by_keywords_at_once_and_semantically_once_embedded(tmp_path, minilm_path):
    folder = tmp_path / "index"
    settings = Settings(docs_dir=SEEDS, index_dir=folder, model=minilm_path)
    build_index(settings=settings, progress=False).close()
    index = open_index(settings, progress=False, background_dense=True)
    try:
        assert index.info().dense and index.dense_progress is None
        index.add([("tianwenguan.txt", EXTRA.encode("utf-8"))])
        hit = index.retrieve("天文馆可容纳多少名观众", k=1, mode="lexical")[0]
        assert hit.source == "tianwenguan.txt"  # searchable by keywords as soon as it is committed
        deadline = time.monotonic() + 300
        while index.dense_progress is not None:
            assert time.monotonic() < deadline, "the upload's vectors were never filled in"
            time.sleep(0.2)
        dense = index.retrieve("周口天文馆日前建成，可容纳三百名观众", k=3, mode="dense")
        assert "tianwenguan.txt" in [p.source for p in dense]
        segments = index.manifest  # every generation since has vectors for every part
        with index.backend.snapshot() as snap:
            assert snap.missing_vectors(True) == [] and snap.dense_coverage() == (snap.n_chunks, snap.n_chunks)
        assert segments["dense"]["enabled"]
    finally:
        index.close()


def _kinds(index) -> dict[str, str]:
    """Each part's vector index kind ("flat", "ivf", "hnsw") in the index's current snapshot."""
    index.backend.refresh(wait=True)
    with index.backend.snapshot() as snap:
        return {seg.id: seg.vectors.kind for seg in snap.gen.segments}


def test_a_large_part_is_searched_by_ivf_at_once_and_by_its_graph_once_built(tmp_path, minilm_path):
    """Above RAG_ANN_THRESHOLD a part is written with IVF (seconds) and its HNSW graph (minutes at 1M) is
    built after the commit, outside the writer: by the app's background thread, or before `open_index`
    returns elsewhere. Dense results then match exact search; nothing else about the index changes."""
    from rag.settings import AnnSettings

    exact = build_index(settings=Settings(docs_dir=SEEDS, index_dir=tmp_path / "exact", model=minilm_path), progress=False)
    want = [p.chunk_id for p in exact.retrieve(QUESTION, k=5, mode="dense")]
    assert set(_kinds(exact).values()) == {"flat"}  # 87 chunks: below the default threshold
    exact.close()

    folder = tmp_path / "index"
    settings = Settings(docs_dir=SEEDS, index_dir=folder, model=minilm_path, ann=AnnSettings(threshold=50))
    built = build_index(settings=settings, progress=False)
    assert list(_kinds(built).values()) == ["ivf"]
    with built.backend.snapshot() as snap:
        assert snap.missing_graphs() == list(_kinds(built)) and snap.missing_vectors(True) == []
    assert built.dense_progress is None and built.info().dense  # the dense leg serves meanwhile
    assert built.retrieve(QUESTION, k=5, mode="dense")
    built.close()

    index = open_index(settings, progress=False, background_dense=True)
    try:
        deadline = time.monotonic() + 120
        while "ivf" in _kinds(index).values():
            assert time.monotonic() < deadline, "the graph was never built"
            time.sleep(0.1)
        assert list(_kinds(index).values()) == ["hnsw"]
        assert [p.chunk_id for p in index.retrieve(QUESTION, k=5, mode="dense")] == want
        assert not list(folder.glob(".graph-*"))  # the graph's file became the part's
        assert index.info().chunks == 87
    finally:
        index.close()

    ivf = settings.with_(ann=AnnSettings(threshold=50, index="ivf"))
    rebuilt = build_index(settings=ivf, progress=False)
    with rebuilt.backend.snapshot() as snap:
        assert snap.missing_graphs() == []  # RAG_ANN_INDEX=ivf: IVF only
    rebuilt.close()
    again = open_index(settings, progress=False)  # not in the background: built before it returns
    assert list(_kinds(again).values()) == ["hnsw"]
    again.close()


def test_a_graph_built_while_the_writer_is_busy_is_swapped_in_later_without_building_it_again(tmp_path, minilm_path):
    """Building a graph takes minutes at scale: when another writer holds the index at the swap, the fill
    keeps the graph's file and swaps it in on its next try."""
    from rag.backends import open_backend
    from rag.backends.base import IndexLocked
    from rag.settings import AnnSettings

    settings = Settings(docs_dir=SEEDS, index_dir=tmp_path / "index", model=minilm_path, ann=AnnSettings(threshold=50),
                        lock_timeout=0.2)
    index = build_index(settings=settings, progress=False)
    other = open_backend(settings)  # another writer of the same folder
    builds = []
    build_graph = index.backend.build_graph
    index.backend.build_graph = lambda part: builds.append(part) or build_graph(part)
    try:
        with other.writer():
            with pytest.raises(IndexLocked):
                index._filler.step()
        assert len(builds) == 1 and len(list((tmp_path / "index").glob(".graph-*"))) == 1
        assert list(_kinds(index).values()) == ["ivf"]
        assert index._filler.step() and len(builds) == 1  # swapped in, not built again
        assert list(_kinds(index).values()) == ["hnsw"] and not list((tmp_path / "index").glob(".graph-*"))
        assert not index._filler.step()  # nothing left
    finally:
        other.close()
        index.close()
