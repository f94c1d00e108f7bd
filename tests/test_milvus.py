"""The Milvus backend through the public API: the library behaviour of the local backend on Milvus Lite
(parametrised `backend` fixture), parity of results with the local backend, connection errors, and a
real Milvus 2.3 server for the dense leg."""

from __future__ import annotations

import json
import socket
import threading
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


def _settings(backend: str, tmp_path, docs=SEEDS, model="none") -> Settings:
    return Settings(docs_dir=docs, index_dir=tmp_path / "index", model=model, backend=backend)


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
    assert all(p.source != "tianwen.txt" for p in library.retrieve("天文馆 球幕影院 观众", k=10, mode="lexical"))
    assert "tianwen.txt" not in library.sources()

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
    assert change.duplicates == 1 and library.info().chunks == chunks
    assert set(_top(library, "天文馆可容纳多少名观众？").sources) == {"edition1.txt", "edition2.txt"}
    library.remove("edition1.txt")
    assert _top(library, "天文馆可容纳多少名观众？").sources == ("edition2.txt",)


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
