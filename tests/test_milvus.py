"""The Milvus backend through the public API: the library behaviour of the local backend on Milvus Lite
(parametrised `backend` fixture), parity of results with the local backend, connection errors, and a
real Milvus 2.3 server for the dense leg."""

from __future__ import annotations

import json
import socket
import time
import zlib

import numpy as np
import pytest

from rag import BackendUnavailable, LexicalUnavailable, build_index, load_index, open_index
from rag.encoders.base import Encoder
from rag.settings import Settings

from .conftest import DEV_QUESTIONS, SEEDS, backend_uri

PAGE = "周口新建天文馆\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院，可容纳三百名观众。\n"
REPRINT = "周口天文馆开馆了\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院，可容纳三百名观众。\n"
PARTY = ("许寨社区有多少名党员？", "000_511f53cd465d0282.txt")


class CharEncoder(Encoder):
    """Bag of characters hashed to 64 dimensions: deterministic and instant, so a dense leg can be
    compared across backends without a model (not for quality)."""

    engine = "test"
    name = "char-hash-64"

    @property
    def dim(self) -> int:
        return 64

    def _encode(self, texts, batch_size, progress, query):
        out = np.zeros((len(texts), 64), np.float32)
        for i, text in enumerate(texts):
            for ch in text:
                out[i, zlib.crc32(ch.encode()) % 64] += 1
        return out


def _settings(backend: str, tmp_path, docs=SEEDS, model="none", **kw) -> Settings:
    return Settings(docs_dir=docs, index_dir=tmp_path / "index", model=model, backend=backend, **kw)



def _top(index, question, mode="lexical"):
    passages = index.retrieve(question, k=1, mode=mode)
    return passages[0] if passages else None


@pytest.fixture()
def library(backend, tmp_path):
    index = open_index(_settings(backend, tmp_path), progress=False)
    yield index
    index.close()


# --- the same behaviour on every backend -----------------------------------------------------------


def test_build_load_and_retrieve(backend, tmp_path):
    built = build_index(settings=_settings(backend, tmp_path), progress=False)
    info = built.info()
    assert (info.documents, info.articles, info.chunks) == (5, 42, 87) and info.lexical_reason == ""
    assert _top(built, PARTY[0]).source == PARTY[1]
    built.close()
    loaded = load_index(settings=_settings(backend, tmp_path))
    passages = loaded.retrieve(PARTY[0], k=3, mode="hybrid")
    assert passages.mode == "lexical" and "语义检索未开启" in passages.notice
    assert passages[0].source == PARTY[1] and "党员" in passages[0].text
    assert [p.source for p in loaded.retrieve(PARTY[0], k=5, sources=["002_d930b353b5af356e.txt"])] == [
        "002_d930b353b5af356e.txt"] * 5
    loaded.close()


def test_add_remove_list_and_re_add(library, tmp_path):
    page = tmp_path / "tianwen.txt"
    page.write_text(PAGE, encoding="utf-8")
    generation = library.info().generation
    [change] = library.add([page])
    assert change.status == "added" and change.articles == 1
    assert library.info().generation == generation + 1
    assert _top(library, "天文馆可容纳多少名观众？").source == "tianwen.txt"
    assert {d.source for d in library.documents()} >= {"tianwen.txt", PARTY[1]}
    assert [a.title for a in library.articles("tianwen.txt")] == ["周口新建天文馆"]

    [removed] = library.remove("tianwen.txt")
    assert removed.status == "removed"
    for mode in ("lexical", "hybrid"):
        assert all(p.source != "tianwen.txt" for p in library.retrieve("天文馆 球幕影院 观众", k=10, mode=mode))
    assert "tianwen.txt" not in library.sources()
    assert not list((tmp_path / "index" / "files").glob("*tianwen*")), "the stored copy goes with it"

    [again] = library.add([page])
    assert again.status == "added" and _top(library, "天文馆可容纳多少名观众？").source == "tianwen.txt"
    [same] = library.add([page])
    assert same.status == "unchanged"


def test_a_reprint_is_stored_once(library, tmp_path):
    first, second = tmp_path / "edition1.txt", tmp_path / "edition2.txt"
    first.write_text(PAGE, encoding="utf-8")
    second.write_text(REPRINT, encoding="utf-8")
    library.add([first])
    chunks = library.info().chunks
    [change] = library.add([second])
    assert change.duplicates == 1 and "只存一份" in change.message
    assert library.info().chunks == chunks, "the reprint adds no chunk"
    assert set(_top(library, "天文馆可容纳多少名观众？").sources) == {"edition1.txt", "edition2.txt"}
    assert len([p for p in library.retrieve("天文馆 观众", k=10, mode="lexical") if "天文馆" in p.text]) == 1, "shown once"
    library.remove("edition1.txt")
    top = _top(library, "天文馆可容纳多少名观众？")
    assert top.sources == ("edition2.txt",) and top.source == "edition2.txt"
    library.remove("edition2.txt")
    top = _top(library, "天文馆可容纳多少名观众？")
    assert top is None or "天文馆" not in top.text


def test_rebuild_keeps_uploads_and_results(library, tmp_path):
    library.add([("tianwen.txt", PAGE.encode("utf-8"))])
    before = [(p.source, p.text) for p in library.retrieve("天文馆可容纳多少名观众？", k=3, mode="lexical")]
    generation = library.info().generation
    changes = library.rebuild()
    assert {c.source for c in changes} >= {"tianwen.txt", PARTY[1]}
    assert library.info().generation > generation
    assert [(p.source, p.text) for p in library.retrieve("天文馆可容纳多少名观众？", k=3, mode="lexical")] == before
    assert library.info().documents == 6


def test_a_reader_sees_a_change_only_at_its_commit(library, tmp_path, monkeypatch):
    reader = load_index(settings=_settings(library.settings.backend, tmp_path))
    seen_before_commit = []

    def spy(cls):
        commit = cls.commit

        def wrapped(self, meta, vector_key=None):
            time.sleep(0.6)  # past any re-check interval of the reader
            seen_before_commit.append(_top(reader, "天文馆可容纳多少名观众？"))
            return commit(self, meta, vector_key)

        monkeypatch.setattr(cls, "commit", wrapped)

    from rag.backends.local import LocalWriter

    spy(LocalWriter)
    try:
        from rag.backends.milvus.writer import MilvusWriter

        spy(MilvusWriter)
    except ImportError:
        pass
    chunks = reader.info().chunks
    library.add([("tianwen.txt", PAGE.encode("utf-8"))])
    [before] = seen_before_commit
    assert before is None or before.source != "tianwen.txt", "an uncommitted document was visible"
    deadline = time.monotonic() + 5
    while _top(reader, "天文馆可容纳多少名观众？").source != "tianwen.txt":
        assert time.monotonic() < deadline, "the commit never became visible to the reader"
        time.sleep(0.1)
    assert reader.info().chunks == chunks + 1
    reader.close()


# --- Milvus only: crashes, errors -------------------------------------------------------------------

milvus_lite = pytest.mark.skipif(
    __import__("importlib").util.find_spec("milvus_lite") is None, reason="Milvus Lite 未安装：pip install 'rag[milvus]'"
)


@milvus_lite
def test_a_write_killed_before_its_commit_is_invisible_and_a_rerun_does_not_duplicate(tmp_path, monkeypatch):
    from rag.backends.milvus.writer import MilvusWriter

    index = open_index(_settings(backend_uri("milvus-lite", tmp_path), tmp_path), progress=False)
    chunks = index.info().chunks

    def die(self, meta, vector_key=None):
        raise KeyboardInterrupt("killed between the rows and the commit row")

    monkeypatch.setattr(MilvusWriter, "commit", die)
    with pytest.raises(KeyboardInterrupt):
        index.add([("tianwen.txt", PAGE.encode("utf-8"))])
    monkeypatch.undo()
    assert index.info().chunks == chunks and "tianwen.txt" not in index.sources()
    top = _top(index, "天文馆可容纳多少名观众？")
    assert top is None or top.source != "tianwen.txt", "rows stored before the commit row must stay invisible"

    [change] = index.add([("tianwen.txt", PAGE.encode("utf-8"))])
    assert change.status == "added" and _top(index, "天文馆可容纳多少名观众？").source == "tianwen.txt"
    backend = index.backend
    with backend.snapshot() as snap:
        name = snap._names["chunks"]
    [row] = backend.client.query(name, filter="", output_fields=["count(*)"])
    assert row["count(*)"] == chunks + 1, "the re-run upserted the same rows, no duplicates"
    index.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@milvus_lite
def test_a_server_that_is_down_is_a_clear_error_naming_the_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MILVUS_TIMEOUT", "3")
    uri = f"milvus://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="无法连接 Milvus") as err:
        load_index(settings=_settings(uri, tmp_path))
    assert uri in str(err.value) and time.monotonic() - started < 30


def test_bad_uris_are_refused_in_chinese(tmp_path):
    from rag.backends.milvus.connection import parse

    with pytest.raises(ValueError, match="不要写账号密码"):
        parse("milvus://root:secret@host:19530")
    with pytest.raises(ValueError, match="未知参数"):
        parse("milvus:///tmp/a.db?colour=red")
    assert parse("milvus://host").address == "http://host:19530"
    assert parse("milvus+https://host/archive").db_name == "archive"
    assert parse(f"milvus://{tmp_path}/a.db").lite


@milvus_lite
def test_a_lite_database_open_in_another_process_is_named(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "archive.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pymilvus import MilvusClient; c = MilvusClient(sys.argv[1]); c.list_collections(); "
        "print('open', flush=True); time.sleep(60)"), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(BackendUnavailable, match="正被另一个进程"):
            build_index(settings=_settings(backend_uri("milvus-lite", tmp_path), tmp_path), progress=False)
    finally:
        holder.kill()
        holder.wait()


# --- parity with the local backend -------------------------------------------------------------------


def _dev_questions() -> list[str]:
    if not DEV_QUESTIONS.exists():
        pytest.skip(f"缺少开发问题集 {DEV_QUESTIONS}")
    return [json.loads(line)["question"] for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tops(index, questions, mode, k=3):
    return [[(p.source, p.text) for p in index.retrieve(q, k=k, mode=mode)] for q in questions]


@milvus_lite
def test_same_questions_same_top_results_as_the_local_backend(tmp_path):
    """Our tokens as sparse BM25 vectors: the server's inner product is our BM25, so the ranking is the
    local one; the dense leg (hashed characters, same vectors) and the fused hybrid agree as well."""
    questions = _dev_questions()
    indexes = {name: build_index(settings=_settings(backend_uri(name, tmp_path / name), tmp_path / name),
                                 progress=False, embedder=CharEncoder())
               for name in ("local", "milvus-lite")}
    try:
        for mode in ("lexical", "dense", "hybrid"):
            local, lite = (_tops(indexes[n], questions, mode) for n in ("local", "milvus-lite"))
            assert lite == local, mode
    finally:
        for index in indexes.values():
            index.close()


@milvus_lite
def test_bundled_model_gives_the_same_answers_on_milvus_lite(bundled_index, tmp_path):
    """The real dense leg: the bundled e5 chunk and sentence vectors, read from the local build's embedding cache."""
    import shutil

    questions = _dev_questions()
    indexes = {}
    try:
        for name in ("local", "milvus-lite"):
            # its embeddings.sqlite comes along: the chunks are not embedded again
            shutil.copytree(bundled_index.settings.index_dir, tmp_path / name / "index")
            settings = _settings(backend_uri(name, tmp_path / name), tmp_path / name, model="bundled")
            indexes[name] = build_index(settings=settings, progress=False)
        local, lite = indexes["local"], indexes["milvus-lite"]
        assert lite.info().dense and lite.info().dim == bundled_index.info().dim
        for mode in ("dense", "hybrid"):
            assert _tops(lite, questions, mode) == _tops(local, questions, mode), mode
    finally:
        for index in indexes.values():
            index.close()


# --- a real Milvus server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """A standalone Milvus 2.3.5 server process (the `milvus` package from PyPI), stopped afterwards."""
    pytest.importorskip("milvus", reason="未安装 milvus 服务器包（pip install milvus==2.3.5），跳过真实服务器测试")
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.listen_port = _free_port()
    try:
        server.start()
    except Exception as exc:  # no binary for this platform, ports refused, a start timeout
        server.stop()
        pytest.skip(f"Milvus 2.3.5 服务器无法在本机启动，跳过真实服务器测试：{type(exc).__name__}: {exc}")
    yield f"milvus://127.0.0.1:{server.listen_port}"
    server.stop()


def test_a_milvus_2_3_server_serves_dense_and_says_lexical_is_unavailable(milvus_server, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MILVUS_TIMEOUT", "5")
    questions = _dev_questions()[:8]
    server = build_index(settings=_settings(milvus_server, tmp_path / "server"), progress=False, embedder=CharEncoder())
    local = build_index(settings=_settings("local", tmp_path / "local"), progress=False, embedder=CharEncoder())
    try:
        info = server.info()
        assert info.dense and info.dim == 64 and "不支持稀疏向量与 BM25" in info.lexical_reason
        assert "关键词检索（jieba + BM25）：关闭" in info.summary()
        with pytest.raises(LexicalUnavailable, match="关键词检索不可用"):
            server.retrieve(PARTY[0], mode="lexical")
        hybrid = server.retrieve(PARTY[0], k=3)
        assert hybrid.mode == "dense" and "本次仅使用语义检索" in hybrid.notice
        assert _tops(server, questions, "dense") == _tops(local, questions, "dense")

        [change] = server.add([("tianwen.txt", PAGE.encode("utf-8"))])
        assert change.status == "added" and server.info().chunks == local.info().chunks + 1
        assert _top(server, PAGE.splitlines()[1], mode="dense").source == "tianwen.txt"
        server.remove("tianwen.txt")
        assert "tianwen.txt" not in server.sources()
        assert all(p.source != "tianwen.txt" for p in server.retrieve(PAGE.splitlines()[1], k=10, mode="dense"))
    finally:
        server.close()
        local.close()
