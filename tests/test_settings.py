"""One Settings object: RAG_* variables are read when a Settings is made, never at import (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.articles import Article
from rag.chunks import Chunk
from rag.settings import AnnSettings, IngestLimits, MilvusSettings, Settings

ROOT = Path(__file__).resolve().parents[1]

# Every numeric knob, with the group it lives in and its default.
NUMBERS = [
    ("RAG_MAX_FILE_MB", lambda s: s.ingest.max_file_mb, 200),
    ("RAG_MAX_PDF_PAGES", lambda s: s.ingest.max_pdf_pages, 1000),
    ("RAG_MAX_DOCX_MB", lambda s: s.ingest.max_docx_mb, 200),
    ("RAG_MAX_IMAGE_PIXELS", lambda s: s.ingest.max_image_pixels, 120_000_000),
    ("RAG_MAX_OCR_PAGES", lambda s: s.ingest.max_ocr_pages, 48),
    ("RAG_ANN_THRESHOLD", lambda s: s.ann.threshold, 200_000),
    ("RAG_ANN_NPROBE", lambda s: s.ann.nprobe, 16),
    ("RAG_ANN_EF_SEARCH", lambda s: s.ann.ef_search, 384),
    ("RAG_ANN_HNSW_M", lambda s: s.ann.hnsw_m, 48),
    ("RAG_VERIFY_SYNC_MB", lambda s: s.verify_sync_mb, 256),
    ("RAG_PARALLEL_MIN_ARTICLES", lambda s: s.parallel_min_articles, 2000),
    ("RAG_MILVUS_TIMEOUT", lambda s: s.milvus.timeout, 10.0),
    ("RAG_MILVUS_FIELD_K", lambda s: s.milvus.field_k, 200),
    ("RAG_MAX_CHARS", lambda s: s.max_chars, 1_000_000),
    ("RAG_MAX_ARTICLES", lambda s: s.max_articles, 2000),
    ("RAG_MAX_UPLOAD_MB", lambda s: s.max_upload_mb, 50),
    ("RAG_MAX_UPLOADS", lambda s: s.max_uploads, 20),
    ("RAG_LOCK_TIMEOUT", lambda s: s.lock_timeout, 600.0),
    ("RAG_WATCH_SECONDS", lambda s: s.watch_seconds, 30.0),
    ("RAG_MODEL_TIMEOUT", lambda s: s.model_timeout, 20.0),
    ("RAG_ARTICLE_WEIGHT", lambda s: s.article_weight, 0.5),
    ("RAG_BIGRAM_WEIGHT", lambda s: s.bigram_weight, 0.5),
]


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_importing_rag_with_bad_values_works_and_settings_names_the_variable(tmp_path):
    """A bad value breaks no import; the first Settings() refuses it, naming the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({name: "abc" for name, _, _ in NUMBERS})
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import rag, rag.ingest, rag.ingest.ocr, rag.ingest.pdf, rag.ingest.image, rag.ingest.docx, rag.library, "
        "rag.index, rag.backends, rag.backends.local, rag.backends.local.segment, rag.backends.local.vectors, "
        "rag.backends.milvus.connection, rag.backends.milvus.lexical, rag.backends.milvus.terms\n"
        "print('imported')\n"
        "try:\n"
        "    rag.Settings()\n"
        "except ValueError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "imported" in out.stdout
    assert "refused:" in out.stdout and "RAG_" in out.stdout.split("refused:")[1] and "'abc'" in out.stdout


@pytest.mark.parametrize("name, get, default", NUMBERS, ids=[n for n, _, _ in NUMBERS])
def test_every_number_has_its_default_is_read_at_construction_and_refused_by_name(clean_env, name, get, default):
    assert get(Settings()) == default
    clean_env.setenv(name, "7")
    assert get(Settings()) == 7  # changed after import: the next Settings sees it
    clean_env.setenv(name, "abc")
    with pytest.raises(ValueError, match=rf"{name}='abc'"):
        Settings()


def test_the_groups_read_the_environment_on_their_own(clean_env):
    clean_env.setenv("RAG_MAX_FILE_MB", "3")
    clean_env.setenv("RAG_OCR", "off")
    clean_env.setenv("RAG_ANN_NPROBE", "5")
    clean_env.setenv("RAG_MILVUS_TOKEN", "root:s3cret")
    limits = IngestLimits()
    assert limits.max_file_bytes == 3 * 2**20 and not limits.ocr
    assert AnnSettings().nprobe == 5
    assert MilvusSettings().token == "root:s3cret"
    assert "s3cret" not in repr(Settings())  # the credential never shows in a repr or a log line
    clean_env.setenv("RAG_MAX_DOCX_MB", "x1")
    with pytest.raises(ValueError, match="RAG_MAX_DOCX_MB"):
        IngestLimits()


def test_ocr_switch(clean_env):
    assert IngestLimits().ocr
    for off in ("0", "off", "No", "false", "none"):
        clean_env.setenv("RAG_OCR", off)
        assert not IngestLimits().ocr
    clean_env.setenv("RAG_OCR", "1")
    assert IngestLimits().ocr


def test_readers_follow_the_limits_they_are_given(clean_env):
    from rag.ingest import Unreadable, read_bytes

    data = ("周口新闻。" * 200_000).encode("utf-8")  # about 3 MB of text
    assert read_bytes(data, "big.txt").pages == 1
    with pytest.raises(Unreadable, match="上限 1 MB"):
        read_bytes(data, "big.txt", IngestLimits(max_file_mb=1))
    clean_env.setenv("RAG_MAX_FILE_MB", "2")  # no limits given: the environment at the call
    with pytest.raises(Unreadable, match="上限 2 MB"):
        read_bytes(data, "big.txt")
    with pytest.raises(Unreadable, match="上限 2 MB"):
        read_bytes(data, "big.txt", Settings().ingest)


def test_a_large_segment_is_written_with_ivf_and_takes_its_hnsw_graph_after(tmp_path, clean_env):
    """RAG_ANN_INDEX=hnsw (the default): a segment above the threshold is written with IVF at once and
    wants a graph; the graph of degree RAG_ANN_HNSW_M, searched with RAG_ANN_EF_SEARCH, is built from its
    vectors and swapped in as a new segment; a merge writes IVF again (exactly the same vectors) and
    wants its own graph. RAG_ANN_INDEX=ivf wants none; an unknown kind, or a degree too small for a graph,
    is refused by name."""
    from rag.backends.local import segment

    assert Settings().ann.index == "hnsw"
    clean_env.setenv("RAG_ANN_EF_SEARCH", "77")
    clean_env.setenv("RAG_ANN_HNSW_M", "6")
    settings = Settings(ann=AnnSettings(threshold=10), verify_sync_mb=0)
    assert (settings.ann.index, settings.ann.ef_search, settings.ann.hnsw_m) == ("hnsw", 77, 6)
    rng = np.random.default_rng(1)
    articles = [Article("s", f"标题{i}", "", f"周口市第{i}条新闻正文，内容足够长。") for i in range(40)]
    chunks = [Chunk("s", a.title, "", i, 0, len(a.body), a.body) for i, a in enumerate(articles)]
    parts = []
    for name in ("a", "b"):
        vectors = rng.standard_normal((40, 8)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        seg = segment.Segment(segment.build(tmp_path, name, articles, chunks, vectors, "key", ("words",), settings=settings),
                              settings=settings)
        assert seg.vectors.kind == "ivf" and seg.wants_graph
        graph = tmp_path / f"graph-{name}"
        segment.build_graph(seg, graph, settings)
        graphed = segment.Segment(segment.with_vectors(tmp_path, f"{name}2", seg, "key", None, None, settings, graph),
                                  settings=settings)
        assert not graph.exists() and graphed.vectors.kind == "hnsw" and not graphed.wants_graph
        assert graphed.vectors.index.hnsw.efSearch == 77 and graphed.vectors.index.hnsw.nb_neighbors(1) == 6  # level 0: 2 M
        assert graphed.vectors.search(vectors[5], 3)[0][0] == 5
        np.testing.assert_array_equal(graphed.vectors.vectors(), vectors)
        assert graphed.manifest.vectors == seg.manifest.vectors and graphed.n_chunks == seg.n_chunks
        parts.append((graphed, np.ones(40, dtype=bool), vectors))
        seg.close()
    path, _ = segment.merge(tmp_path, "m", [(seg, live) for seg, live, _ in parts], settings)
    merged = segment.Segment(path, settings=settings)
    assert merged.vectors.kind == "ivf" and merged.wants_graph and len(merged.vectors) == 80
    np.testing.assert_array_equal(merged.vectors.vectors(), np.concatenate([v for _, _, v in parts]))
    for seg, _, _ in parts:
        seg.close()
    merged.close()
    ivf = Settings(ann=AnnSettings(threshold=10, index="ivf"), verify_sync_mb=0)
    assert not segment.Segment(path, settings=ivf).wants_graph
    clean_env.setenv("RAG_ANN_INDEX", "annoy")
    with pytest.raises(ValueError, match="RAG_ANN_INDEX"):
        Settings()
    clean_env.setenv("RAG_ANN_INDEX", "hnsw")
    clean_env.setenv("RAG_ANN_HNSW_M", "1")
    with pytest.raises(ValueError, match="RAG_ANN_HNSW_M=1"):
        Settings()


def test_segments_take_ann_and_verification_from_the_settings(tmp_path, clean_env):
    from rag.backends.base import IndexCorrupt
    from rag.backends.local import segment

    rng = np.random.default_rng(0)
    articles = [Article("s", f"标题{i}", "", f"周口市第{i}条新闻正文，内容足够长。") for i in range(60)]
    chunks = [Chunk("s", a.title, "", i, 0, len(a.body), a.body) for i, a in enumerate(articles)]
    vectors = rng.standard_normal((60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ivf = Settings(ann=AnnSettings(threshold=10, nprobe=3), verify_sync_mb=0)
    path = segment.build(tmp_path, "s1", articles, chunks, vectors, "key", ("words",), settings=ivf)
    seg = segment.Segment(path, settings=ivf)
    assert seg.vectors.index.nprobe == 3  # IVF above the threshold, probing what the settings say
    flat = segment.build(tmp_path, "s2", articles, chunks, vectors, "key", ("words",))
    assert not hasattr(segment.Segment(flat).vectors.index, "nprobe")  # default threshold: exact search
    seg.close()

    data = bytearray((path / "chunk_article.npy").read_bytes())
    data[-1] ^= 1  # a flipped bit in the data, same size: only the checksum can tell
    (path / "chunk_article.npy").write_bytes(data)
    with pytest.raises(IndexCorrupt, match="校验和不符"):
        segment.Segment(path, settings=Settings())  # 256 MB: verified before it serves
    # verify_sync_mb=0: opened at once, verified in the background (which then finds the damage)
    late = segment.Segment(path, settings=ivf)
    for _ in range(200):
        if late.corrupt:
            break
        time.sleep(0.05)
    assert "校验和不符" in late.corrupt
    late.close()


def test_both_backends_receive_the_same_settings(tmp_path, clean_env):
    from rag.backends import open_backend

    settings = Settings(index_dir=tmp_path / "index", model="none", ann=AnnSettings(threshold=1, nprobe=2))
    local = open_backend(settings)
    assert local.settings is settings
    local.close()
    milvus = open_backend(settings.with_(backend=f"milvus://{tmp_path / 'm.db'}"))
    assert milvus.settings.ann == settings.ann and milvus.settings.milvus is settings.milvus
    same = settings.with_(backend="milvus://127.0.0.1:1")
    assert open_backend(same).settings is same


def test_the_cli_and_the_app_name_a_bad_variable_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_ANN_NPROBE="sixteen", PYTHONPATH=str(ROOT))
    for cmd in ([sys.executable, "-m", "rag", "info"], [sys.executable, str(ROOT / "app.py")]):
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert "RAG_ANN_NPROBE='sixteen'" in out.stderr and "Traceback" not in out.stderr
