"""The index through the public API: real bm25s, FAISS and SQLite in temp folders."""

from __future__ import annotations

import concurrent.futures
import os

import pytest

import rag
from rag import DenseUnavailable, IndexCorrupt, build_index, load_index
from rag.evaluate import evaluate, load_questions
from rag.index import open_index
from rag.settings import Settings

from .conftest import DEV_QUESTIONS


def test_info_counts_and_dense_off_reason(lexical_index):
    info = lexical_index.info()
    assert (info.documents, info.articles) == (5, 42)
    assert 60 <= info.chunks <= 120
    assert info.dense is False and "未配置语义模型" in info.dense_reason


def test_passages_carry_their_source(lexical_index):
    passages = lexical_index.retrieve("智慧岛核心区签约入驻了多少家企业？", k=3, mode="lexical")
    top = passages[0]
    assert top.source == "002_d930b353b5af356e.txt"
    assert top.title == "示范区:真抓实干求突破 全力以赴谋发展"
    assert top.byline == "记者 姬慧洋 通讯员 王明杰"
    assert "359家企业签约入驻" in top.text
    assert top.lexical_rank == 1 and top.dense_rank is None
    assert top.end - top.start == len(top.text) and len(top.text) <= 600
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


@pytest.mark.skipif(not DEV_QUESTIONS.exists(), reason="../shared/eval is not beside the checkout")
def test_dev_questions_hit_at_5(lexical_index):
    report = evaluate(lexical_index, load_questions(DEV_QUESTIONS), mode="lexical")
    assert report.hits[5] >= 0.9, report.table()
    assert report.hits[1] >= 0.8, report.table()


def test_no_passage_repeats_sentences_of_another(lexical_index):
    for q in ("开发区“创卫”工作推进会", "许寨社区", "纪委监察工委专项督导组一共督导检查了多少个部门？"):
        passages = lexical_index.retrieve(q, k=10, mode="lexical")
        for i, a in enumerate(passages):
            for b in passages[i + 1 :]:
                if a.article_id == b.article_id:
                    assert a.end <= b.start or b.end <= a.start, (a.text, b.text)


def test_hybrid_without_dense_model_says_it_used_lexical(lexical_index):
    passages = lexical_index.retrieve("文昌万达广场施工高峰时段有多少工人？", k=5)
    assert passages.mode == "lexical" and "语义检索未开启" in passages.notice
    assert "4000多人" in passages[0].text
    with pytest.raises(DenseUnavailable, match="语义检索不可用"):
        lexical_index.retrieve("工人", mode="dense")


@pytest.mark.parametrize("query", ["", "   \n\t"])
def test_empty_query_is_rejected(lexical_index, query):
    with pytest.raises(ValueError, match="查询不能为空"):
        lexical_index.retrieve(query)


@pytest.mark.parametrize("k", [0, -3])
def test_bad_k_is_rejected(lexical_index, k):
    with pytest.raises(ValueError, match="k"):
        lexical_index.retrieve("智慧岛", k=k)


def test_unknown_mode_is_rejected(lexical_index):
    with pytest.raises(ValueError, match="检索模式"):
        lexical_index.retrieve("智慧岛", mode="fuzzy")


def test_odd_queries_return_normally(lexical_index):
    assert isinstance(lexical_index.retrieve("智慧岛" * 33_334, k=3), list)  # a 100,000-character query
    assert lexical_index.retrieve("？！。，……", k=3) == []
    assert isinstance(lexical_index.retrieve("How many companies moved into the island?", k=3), list)


def test_concurrent_queries_agree_with_serial_ones(lexical_index):
    questions = [q.question for q in load_questions(DEV_QUESTIONS)] if DEV_QUESTIONS.exists() else ["智慧岛", "许寨社区"]
    expected = {q: [p.chunk_id for p in lexical_index.retrieve(q, k=5)] for q in questions}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda q: (q, [p.chunk_id for p in lexical_index.retrieve(q, k=5)]), questions * 4))
    assert all(expected[q] == ids for q, ids in results)


def test_offline_fallback_with_a_model_that_cannot_load(tmp_path, seeds_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(RuntimeWarning, match="语义模型不可用"):
        index = build_index(seeds_dir, tmp_path / "index", model="no-such-org/no-such-model-xyz", progress=False)
    info = index.info()
    assert info.dense is False and "no-such-model-xyz" in info.dense_reason
    assert index.retrieve("智慧岛核心区签约入驻了多少家企业？")[0].source == "002_d930b353b5af356e.txt"
    assert index.manifest["dense"]["enabled"] is False and index.manifest["dense"]["reason"]


def test_missing_local_model_directory_is_reported(tmp_path, seeds_dir):
    with pytest.warns(RuntimeWarning, match="模型目录不存在"):
        index = build_index(seeds_dir, tmp_path / "index", model=str(tmp_path / "no-model-here"), progress=False)
    assert not index.info().dense and "模型目录不存在" in index.info().dense_reason


def test_reuse_then_only_the_changed_file_is_read_again(tmp_path, seeds_copy, monkeypatch):
    settings = Settings(docs_dir=seeds_copy, index_dir=tmp_path / "index", model="none")
    first = open_index(settings, progress=False)
    again = open_index(settings, progress=False)
    assert again.info().generation == first.info().generation, "nothing changed: nothing is written"

    import rag.library

    split = rag.library.split_articles
    read = []
    monkeypatch.setattr(rag.library, "split_articles", lambda doc: read.append(doc.source) or split(doc))
    page = seeds_copy / "004_12cb73f56a8ba074.txt"
    page.write_text(page.read_text(encoding="utf-8") + "\n周口新建天文馆\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院。\n", encoding="utf-8")
    (seeds_copy / "001_39b2f5fd87845c7e.txt").unlink()
    synced = open_index(settings, progress=False)
    assert read == ["004_12cb73f56a8ba074.txt"], "only the changed file is read again"
    assert synced.info().generation == first.info().generation + 1
    assert synced.retrieve("天文馆有什么？", k=1)[0].title == "周口新建天文馆"
    assert "001_39b2f5fd87845c7e.txt" not in synced.sources()
    assert all(p.source != "001_39b2f5fd87845c7e.txt" for p in synced.retrieve("许寨社区 党员", k=10))
    first.refresh()
    assert first.info().generation == synced.info().generation, "an open index moves to the new generation"


def test_bad_files_are_skipped_with_a_warning(tmp_path, seeds_dir, caplog):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "page.md").write_text((seeds_dir / "003_dbd476b8f86f7364.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (docs / "gbk.txt").write_bytes("河南周口\n本报讯（记者 王晨）周口港今年吞吐量创新高。".encode("gb18030"))
    (docs / "empty.txt").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (docs / "notes.pdf").write_bytes(b"%PDF-1.4")
    before = {p: p.read_bytes() for p in docs.rglob("*") if p.is_file()}
    with caplog.at_level("WARNING"):
        index = build_index(docs, tmp_path / "index", model="none", progress=False)
    assert index.info().documents == 2
    assert "empty.txt" in caplog.text and "binary.txt" in caplog.text
    assert index.retrieve("周口港吞吐量")[0].source == "gbk.txt"
    assert {p: p.read_bytes() for p in docs.rglob("*") if p.is_file()} == before, "the docs folder is never written"


def _segment_file(index, suffix):
    return next(p for p in sorted((index.folder / "segments").rglob("*")) if p.name.endswith(suffix))


def _flip(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_bit_flip_in_the_chunk_store_is_detected_and_open_index_rebuilds(tmp_path, seeds_dir):
    settings = Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none")
    index = open_index(settings, progress=False)
    generation = index.info().generation
    index.close()
    _flip(_segment_file(index, "store.sqlite"))  # same size: only a checksum can tell
    with pytest.raises(IndexCorrupt, match="校验和不符"):
        load_index(tmp_path / "index")
    rebuilt = open_index(settings, progress=False)
    assert rebuilt.info().generation > generation
    assert rebuilt.retrieve("智慧岛核心区签约入驻了多少家企业？")[0].source == "002_d930b353b5af356e.txt"


@pytest.mark.parametrize("suffix", ["words.tf.npy", "bigrams.hashes.npy", "chunk_article.npy"])
def test_a_bit_flip_in_a_bm25_file_is_detected(tmp_path, seeds_dir, suffix):
    index = build_index(seeds_dir, tmp_path / "index", model="none", progress=False)
    index.close()
    _flip(_segment_file(index, suffix))
    with pytest.raises(IndexCorrupt, match="校验和不符"):
        load_index(tmp_path / "index")


def test_garbage_or_truncation_is_detected(tmp_path, seeds_dir):
    index = build_index(seeds_dir, tmp_path / "index", model="none", progress=False)
    index.close()
    _segment_file(index, "words.docs.npy").write_bytes(b"garbage" * 3)
    with pytest.raises(IndexCorrupt, match="大小不符"):
        load_index(tmp_path / "index")


def test_a_manifest_of_the_wrong_shape_is_corrupt_not_a_crash(tmp_path, seeds_dir):
    import xxhash

    from rag.backends.local.manifest import _MARK

    index = build_index(seeds_dir, tmp_path / "index", model="none", progress=False)
    index.close()
    manifest = next((tmp_path / "index" / "generations").glob("*.json"))
    for body in (b'{"format":1,"files":[],"dense":null}', b"[]", b'{"format":2}'):
        manifest.write_bytes(body + _MARK + xxhash.xxh3_128_hexdigest(body).encode() + b"\n")
        with pytest.raises(IndexCorrupt, match="结构不符"):
            load_index(tmp_path / "index")
    manifest.write_bytes(b'{"format":1,"files":[],"dense":null}')  # no checksum line at all
    with pytest.raises(IndexCorrupt, match="校验和不符"):
        load_index(tmp_path / "index")


def test_interrupted_build_leaves_previous_index_usable_and_no_leftovers(tmp_path, seeds_dir, monkeypatch):
    index = build_index(seeds_dir, tmp_path / "index", model="none", progress=False)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rag.backends.local.segment.store.create", boom)
    with pytest.raises(KeyboardInterrupt):
        build_index(seeds_dir, tmp_path / "index", model="none", progress=False)
    monkeypatch.undo()
    assert list((tmp_path / "index" / "segments").glob(".*.tmp")), "the dead build left its temp folder"
    again = load_index(tmp_path / "index")
    assert again.info().generation == index.info().generation
    assert again.retrieve("许寨社区有多少名党员？")[0].source == "000_511f53cd465d0282.txt"
    build_index(seeds_dir, tmp_path / "index", model="none", progress=False)  # the next writer cleans up
    assert not list((tmp_path / "index" / "segments").glob(".*.tmp"))


def test_missing_index_is_reported(tmp_path):
    with pytest.raises(IndexCorrupt, match="没有索引"):
        load_index(tmp_path / "nothing")


def test_default_index_follows_environment(tmp_path, seeds_dir, monkeypatch):
    monkeypatch.setenv("RAG_DOCS_DIR", str(seeds_dir))
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "default-index"))
    monkeypatch.setenv("RAG_MODEL", "none")
    monkeypatch.setattr(rag, "_default", None)
    passages = rag.retrieve("开元万达广场南侧设立临时停车场后增加了多少个车位？", k=3)
    assert any("增加车位420个" in p.text for p in passages)
    assert (tmp_path / "default-index" / "CURRENT").exists()


# --- the dense leg, for real, with the bundled English all-MiniLM-L6-v2 -------------------------------

ENGLISH_DOCS = {
    "library.txt": "New library opens downtown\nThe mayor cut the ribbon on a public library stocked with thousands of books.",
    "flood.txt": "Storm floods streets\nHeavy rain flooded several streets and closed the highway overnight.",
    "football.txt": "Team wins final\nThe local football team won the regional championship final on Sunday.",
    "market.txt": "Farmers market returns\nGrowers sell fresh vegetables and fruit every Saturday morning in the square.",
}


@pytest.fixture(scope="module")
def english_dense_index(tmp_path_factory, minilm_path):
    docs = tmp_path_factory.mktemp("english-docs")
    for name, text in ENGLISH_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return build_index(docs, tmp_path_factory.mktemp("english") / "index", model=minilm_path, progress=False)


def test_dense_leg_finds_a_passage_sharing_no_word_with_the_query(english_dense_index):
    index = english_dense_index
    assert index.info().dense and index.info().dim == 384
    query = "Where can residents borrow novels?"
    words = set(query.lower().strip("?").split())
    assert not words & set(ENGLISH_DOCS["library.txt"].lower().replace(".", "").split())
    assert index.retrieve(query, k=3, mode="lexical") == []
    dense = index.retrieve(query, k=3, mode="dense")
    assert dense[0].source == "library.txt" and dense[0].dense_rank == 1 and dense[0].lexical_rank is None
    hybrid = index.retrieve(query, k=3, mode="hybrid")
    assert hybrid.mode == "hybrid" and hybrid.notice == "" and hybrid[0].source == "library.txt"


def test_dense_index_reloads_with_its_model(english_dense_index):
    again = load_index(english_dense_index.folder)
    assert again.dense_enabled
    assert again.retrieve("What did the weather do to the roads?", k=1, mode="dense")[0].source == "flood.txt"


def test_a_rebuild_leaves_only_the_new_index_on_disk(tmp_path, seeds_dir):
    """Nobody holds the replaced index once the build returns: its files go at once, not at the next write."""
    build_index(seeds_dir, tmp_path / "index", model="none", progress=False).close()
    index = build_index(seeds_dir, tmp_path / "index", model="none", progress=False)
    assert len(list((tmp_path / "index" / "segments").iterdir())) == 1
    assert len(list((tmp_path / "index" / "generations").glob("*.json"))) == 1
    index.close()


def test_a_sync_with_nothing_changed_takes_no_writer_lock(tmp_path, seeds_copy):
    """The app's folder watch runs sync every few seconds; a quiet folder must not block other writers."""
    from rag.backends.local.folder import WriterLock

    settings = Settings(docs_dir=seeds_copy, index_dir=tmp_path / "index", model="none", lock_timeout=0)
    index = open_index(settings, progress=False)
    generation = index.info().generation
    lock = WriterLock(tmp_path / "index")
    lock.acquire()  # another writer is busy
    try:
        assert index.sync() == []
    finally:
        lock.release()
    page = seeds_copy / "003_dbd476b8f86f7364.txt"
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 10**9))  # touched, not changed
    assert index.sync() == [] and index.info().generation == generation + 1, "the new stamp is committed once"
    assert index.sync() == [] and index.info().generation == generation + 1, "and then the folder is quiet again"
    index.close()
