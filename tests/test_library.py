"""The library through the public API and the CLI: re-uploads, duplicates, bad uploads, merges, killed uploads.

Add, remove, re-add and reprints run on every backend in test_milvus.py."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from rag import LibraryError, load_index, open_index
from rag.library import safe_name
from rag.settings import Settings

from .conftest import ROOT

PAGE = "周口新建天文馆\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院，可容纳三百名观众。\n"
REPRINT = "周口天文馆开馆了\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院，可容纳三百名观众。\n"  # same body, new headline


@pytest.fixture()
def library(tmp_path, seeds_dir):
    index = open_index(Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none"), progress=False)
    yield index
    index.close()


def _top(index, question):
    passages = index.retrieve(question, k=1)
    return passages[0] if passages else None


def test_identical_re_upload_is_a_no_op_and_new_content_replaces(library, tmp_path):
    page = tmp_path / "tianwen.txt"
    page.write_text(PAGE, encoding="utf-8")
    library.add([page])
    generation = library.info().generation
    [same] = library.add([page])
    assert same.status == "unchanged" and "未做改动" in same.message
    assert library.info().generation == generation, "nothing was written"
    page.write_text(PAGE.replace("三百", "五百"), encoding="utf-8")
    [replaced] = library.add([page])
    assert replaced.status == "replaced"
    assert "五百" in _top(library, "天文馆可容纳多少名观众？").text
    assert sum(d.source == "tianwen.txt" for d in library.documents()) == 1


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("../../etc/passwd", PAGE.encode(), None),  # a path is reduced to its file name, inside the library
        ("empty.txt", b"", "0 字节"),
        ("binary.txt", b"\x00\x01\x02\x03" * 100, "不是其他支持的格式"),
        ("..", PAGE.encode(), "文件名无效"),
        ("bad\x00name.txt", PAGE.encode(), "NUL"),
    ],
)
def test_bad_uploads_are_refused_clearly_and_nothing_is_lost(library, tmp_path, name, data, reason):
    before = library.sources()
    [change] = library.add([(name, data)])
    if reason is None:
        assert change.status == "added" and change.source == "passwd"
        stored = list((tmp_path / "index" / "files").iterdir())
        assert all(p.parent == tmp_path / "index" / "files" for p in stored)
        assert not (tmp_path / "etc").exists()
    else:
        assert change.status == "refused" and reason in change.message
        assert library.sources() == before
    assert _top(library, "许寨社区有多少名党员？").source == "000_511f53cd465d0282.txt"


def test_safe_names():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\x\\报纸.pdf") == "报纸.pdf"
    assert safe_name("a\x07b.txt") == "a_b.txt"
    assert safe_name(".hidden.txt") == "hidden.txt"
    for bad in ("", "..", "/", "a/..", "x\x00y"):
        with pytest.raises(LibraryError):
            safe_name(bad)


def test_a_folder_document_is_removed_from_the_folder_not_by_name(library):
    with pytest.raises(LibraryError, match="来自文档目录"):
        library.remove("000_511f53cd465d0282.txt")
    with pytest.raises(LibraryError, match="没有名为"):
        library.remove("no-such-document.txt")
    [change] = library.add([("000_511f53cd465d0282.txt", PAGE.encode())])
    assert change.status == "refused" and "同名" in change.message


def test_many_adds_are_merged_and_results_stay_the_same(library, tmp_path):
    from rag.backends.local import MERGE_FACTOR

    for n in range(MERGE_FACTOR + 1):
        page = tmp_path / f"page{n}.txt"
        page.write_text(PAGE.replace("天文馆", f"天文馆{n}号").replace("三百", f"{n + 3}百"), encoding="utf-8")
        library.add([page])
    before = [(p.source, p.text) for p in library.retrieve("天文馆2号可容纳多少名观众？", k=5)]
    segments = len(list((tmp_path / "index" / "segments").iterdir()))
    library.maintain()
    assert len(list((tmp_path / "index" / "segments").iterdir())) < segments
    assert [(p.source, p.text) for p in library.retrieve("天文馆2号可容纳多少名观众？", k=5)] == before
    assert _top(library, "许寨社区有多少名党员？").source == "000_511f53cd465d0282.txt"


def test_cli_add_list_remove(tmp_path, seeds_dir):
    page = tmp_path / "tianwen.txt"
    page.write_text(PAGE, encoding="utf-8")
    env = {"RAG_MODEL": "none", "RAG_DOCS_DIR": str(seeds_dir), "RAG_INDEX_DIR": str(tmp_path / "index"), "PATH": "/usr/bin:/bin"}

    def rag(*args):
        return subprocess.run([sys.executable, "-m", "rag", "-q", *map(str, args)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    added = rag("add", page)
    assert added.returncode == 0 and "+ tianwen.txt：已添加" in added.stdout
    listed = rag("list")
    assert "tianwen.txt" in listed.stdout and "上传" in listed.stdout and "共 6 篇文档" in listed.stdout
    assert load_index(tmp_path / "index").retrieve("天文馆可容纳多少名观众？", k=1)[0].source == "tianwen.txt"
    removed = rag("remove", "tianwen.txt")
    assert removed.returncode == 0 and "- tianwen.txt：已删除" in removed.stdout
    missing = rag("remove", "tianwen.txt")
    assert missing.returncode == 2 and "没有名为" in missing.stderr
    assert "tianwen.txt" not in rag("list").stdout


def test_an_upload_killed_before_its_commit_is_not_resurrected_by_a_rebuild(library, tmp_path):
    """`add` stores the original before it commits; a kill in between leaves an orphan that no rebuild may take in."""
    page = tmp_path / "tianwen.txt"
    page.write_text(PAGE, encoding="utf-8")
    library.add([page])
    files = tmp_path / "index" / "files"
    orphan = files / ("0123456789abcdef-" + "orphan.txt")
    orphan.write_text(REPRINT.replace("天文馆", "科技馆"), encoding="utf-8")
    library.rebuild()
    assert "orphan.txt" not in library.sources() and "tianwen.txt" in library.sources()
    assert not orphan.exists(), "the orphan is collected"


def test_a_rebuild_without_a_readable_index_keeps_the_stored_uploads(tmp_path, seeds_dir):
    """With no committed list of documents left, the stored originals are all there is: a rebuild keeps them."""
    settings = Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none")
    index = open_index(settings, progress=False)
    page = tmp_path / "tianwen.txt"
    page.write_text(PAGE, encoding="utf-8")
    index.add([page])
    index.close()
    for manifest in (tmp_path / "index" / "generations").glob("*.json"):
        manifest.write_text("{damaged", encoding="utf-8")
    index = open_index(settings, progress=False)
    try:
        assert "tianwen.txt" in index.sources()
        assert _top(index, "天文馆可容纳多少名观众？").source == "tianwen.txt"
    finally:
        index.close()


# --- Near duplicates: a reprint with small changes, a scan of a stored page ------------------------

STORY = ("周口天文馆今日正式开馆。天文馆位于周口东新区文昌大道北侧，总建筑面积一万二千平方米，"
         "馆内设有球幕影院、天象厅和航天展区，球幕影院可容纳三百名观众。开馆首日共接待市民四千余人次，"
         "不少家长带着孩子前来参观，讲解员介绍了二十四节气与古代天文仪器的知识。")


@pytest.fixture()
def any_library(backend, tmp_path, seeds_dir):
    """The seeds on each storage backend in turn (local files, Milvus Lite)."""
    index = open_index(Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none", backend=backend),
                       progress=False)
    yield index
    index.close()


def test_a_reprint_with_small_changes_is_stored_once_and_lists_both_files(any_library, tmp_path):
    library = any_library
    first = tmp_path / "zkrb-0301.txt"
    first.write_text(f"周口天文馆开馆\n本报讯（记者 宋风）{STORY}\n", encoding="utf-8")
    other = tmp_path / "zkwb-0302.txt"  # another paper's edition: new headline, byline, two words changed
    other.write_text(f"天文馆迎来首批观众\n本报讯（通讯员 李明）{STORY.replace('四千余', '4000余').replace('不少', '许多')}\n",
                     encoding="utf-8")
    unrelated = tmp_path / "port.txt"
    unrelated.write_text("周口港吞吐量创新高\n本报讯（记者 王晨）" + "周口港今年前十个月完成货物吞吐量三千万吨，同比增长百分之十二，"
                         "集装箱航线新开通四条，通达上海、宁波和连云港。\n", encoding="utf-8")
    library.add([first])
    articles = library.info().articles
    [change] = library.add([other])
    assert change.status == "added" and change.duplicates == 1 and "其中 1 篇与已有文章相同" in change.message
    assert library.info().articles == articles, "the reprint is not stored a second time"
    assert next(d for d in library.documents() if d.source == "zkwb-0302.txt").duplicates == 1
    hits = [p for p in library.retrieve("天文馆的球幕影院可容纳多少名观众？", k=5) if "球幕影院" in p.text]
    assert len(hits) == 1 and set(hits[0].sources) == {"zkrb-0301.txt", "zkwb-0302.txt"}
    [change] = library.add([unrelated])
    assert change.duplicates == 0 and library.info().articles == articles + 1
    library.remove(["zkrb-0301.txt"])  # the reprint keeps the article findable
    hit = library.retrieve("天文馆的球幕影院可容纳多少名观众？", k=1)[0]
    assert "球幕影院" in hit.text and hit.sources == ("zkwb-0302.txt",)


def test_signing_beside_gives_the_signatures_signed_here(seeds_dir, tmp_path, monkeypatch):
    """A batch is signed a group of texts at a time, and a large one on two cores, the later half by a
    forked process: the signatures and buckets of each text signed alone, in order; if that process dies,
    the rest are signed here; and a rebuild signed that way finds the reprint."""
    import os

    import numpy as np

    from rag import forked, near_duplicates
    from rag.articles import split_articles
    from rag.ingest import read_documents

    bodies = [a.body for d in read_documents(seeds_dir) for a in split_articles(d)] * 30  # > 2 slices
    texts = [t for i, body in enumerate(bodies) for t in ((body, "太短的通知。") if i % 5 == 0 else (body,))]
    here = [near_duplicates.signed([t])[0] for t in texts]  # alone
    assert 0 < sum(s is None for s in here) < len(here) / 2, "some too short to sign, in among the others"

    def same(got):
        return len(got) == len(here) and all((a is None and b is None) or (np.array_equal(a.sig, b.sig) and a.buckets == b.buckets)
                                             for a, b in zip(got, here))

    real = forked._map

    def noting(send, fn, items, size):  # the child notes how many texts it signed
        (tmp_path / "child").write_text(str(sum(map(len, items))))
        real(send, fn, items, size)

    assert same(near_duplicates.sign_all(texts))
    monkeypatch.setattr(forked, "_map", noting)
    assert same(near_duplicates.sign_all(texts, beside=True))
    assert 0.3 * len(texts) < int((tmp_path / "child").read_text()) < 0.7 * len(texts)

    def dies_after_one_slice(send, fn, items, size):
        real(send, fn, items[:size], size)
        os._exit(1)

    monkeypatch.setattr(forked, "_map", dies_after_one_slice)
    assert same(near_duplicates.sign_all(texts, beside=True))
    monkeypatch.undo()

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zkrb-0301.txt").write_text(f"周口天文馆开馆\n本报讯（记者 宋风）{STORY}\n", encoding="utf-8")
    (docs / "zkwb-0302.txt").write_text(f"天文馆迎来首批观众\n本报讯（通讯员 李明）{STORY.replace('四千余', '4000余')}\n",
                                        encoding="utf-8")
    settings = Settings(docs_dir=docs, index_dir=tmp_path / "index", model="none", workers=2, parallel_min_articles=1)
    index = open_index(settings, progress=False)
    assert sorted(d.duplicates for d in index.documents()) == [0, 1] and index.info().articles == 1
    index.close()


@pytest.mark.slow
def test_a_pdf_and_its_scan_in_one_index_give_one_quoted_copy(library):
    """A page as a PDF and as its scan: one set of articles, each listing both files; answers quote once."""
    from rag import ask
    from rag.ingest import ocr

    from . import pages

    if not ocr.available():
        pytest.skip('OCR 未安装（pip install -e ".[ocr]"）')
    pdf, _ = pages.column_page(pages.column_stories(), folio="第3版", latin_font="Helvetica")
    scan = pages.scanned_pdf([pages.render_png(pdf, 0, dpi=200)])
    articles = library.info().articles
    changes = {c.source: c for c in library.add([("zkrb-p3-scan.pdf", scan), ("zkrb-p3.pdf", pdf)])}
    # The page reprints part of a seed article (全力以赴确保项目早日投产达效): present already, nearly.
    assert changes["zkrb-p3.pdf"].duplicates == 1, "the text layer is the copy kept, whatever the order"
    assert changes["zkrb-p3-scan.pdf"].duplicates == 3 and "其中 3 篇与已有文章相同" in changes["zkrb-p3-scan.pdf"].message
    assert library.info().articles == articles + 2
    result = ask("底特律第二浸信会教堂哪一年被列入国家史迹名录？", index=library, mode="lexical")
    assert result.found
    quoted = [c.sentence for c in result.citations]
    assert "1989年，教堂被列入国家史迹名录。" in quoted and len(quoted) == len(set(quoted))
    cited = result.citations[0].passage
    assert cited.title == "底特律第二浸信会教堂：一段介绍" and cited.page == 3
    assert cited.source == "zkrb-p3.pdf" and set(cited.sources) == {"zkrb-p3.pdf", "zkrb-p3-scan.pdf"}
    hits = [p for p in library.retrieve("底特律第二浸信会教堂哪一年被列入国家史迹名录？", k=10) if "1989年" in p.text]
    assert len(hits) == 1, "one copy of the article, not one per file"


def test_near_duplicate_index_rules(tmp_path, seeds_dir):
    """MinHash + LSH on real sentences: small edits match, shared sentences do not, a gone holder does not."""
    import random
    import re

    from rag.ingest import read_documents
    from rag.near_duplicates import NearDuplicates, signature, similarity

    text = "".join(d.text for d in read_documents(seeds_dir))
    sentences = list(dict.fromkeys(s for s in re.findall(r"[^。！？\n]+[。！？]", text) if len(s) > 12))
    rng = random.Random(7)
    picked = rng.sample(sentences, 24)
    article, other = "".join(picked[:12]), "".join(picked[:5] + picked[12:19])  # 5 of 12 sentences shared
    chars = list(article)
    for pos in rng.sample(range(len(chars)), 4):  # four misread characters
        chars[pos] = "口"
    misread = "".join(chars)
    assert signature("太短的通知。") is None

    near = NearDuplicates(tmp_path / "nd.sqlite")
    live = {"a.pdf": "h1"}
    near.record(1, signature(article), "a.pdf", "h1", "周口天文馆今日正式开馆迎客")
    assert near.find(signature(misread), live)[0] == 1
    assert near.find(signature(other), live) is None, "sharing some sentences is not being the same article"
    assert near.find(signature(misread), {"a.pdf": "another version"}) is None, "only present documents count"
    assert near.find(signature(misread), {}) is None
    # A poor scan: lower similarity, accepted for OCR text under the same headline only.
    poor = list(article)
    for pos in random.Random(20).sample(range(len(poor)), 20):  # one character in 25 misread
        poor[pos] = "口"
    poor = signature("".join(poor))
    assert 0.55 <= similarity(poor, signature(article)) < 0.7
    assert near.find(poor, live, "周口天文馆今日正式开馆迎客") is None
    assert near.find(poor, live, "周口天文馆今日正式开馆迎客", ocr=True)[0] == 1
    assert near.find(poor, live, "周口港吞吐量创新高", ocr=True) is None
    near.close()


def test_a_flood_of_look_alikes_is_read_in_bounded_lookups(tmp_path):
    """A lookup reads at most MAX_CANDIDATES band rows, and still finds a stored look-alike among thousands."""
    from rag.near_duplicates import MAX_CANDIDATES, NearDuplicates, signature

    def story(i):
        return f"这是第{i}条消息。" + "周口市今年继续推进城市更新，老旧小区改造惠及居民。" * 6

    near = NearDuplicates(tmp_path / "nd.sqlite")
    for i in range(3 * MAX_CANDIDATES):
        near.record(10**6 + i, signature(story(i)), "flood.txt", "h1")
    key, score = near.find(signature(story(99999)), {"flood.txt": "h1"})
    assert 10**6 <= key < 10**6 + 3 * MAX_CANDIDATES and score >= 0.7
    near.close()


def test_look_alike_articles_of_one_file_are_not_duplicates_of_each_other(tmp_path, seeds_dir):
    """A document's own articles are not in the library while it is added: none is marked as a copy."""
    index = open_index(Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none"), progress=False)
    text = "".join(f"第{i}条新闻标题\n本报讯（记者 李四）这是第{i}条消息的正文，" + "内容较长的报道文字" * 50 + "。\n\n"
                   for i in range(300))
    try:
        [change] = index.add([("many.txt", text.encode())])
        assert change.status == "added" and change.articles == 300 and change.duplicates == 0
        [again] = index.add([("many-again.txt", text.replace("李四", "王五").encode())])
        assert again.status == "added" and again.duplicates == 300  # a reprint of the whole file: all found
    finally:
        index.close()


def test_a_damaged_near_duplicate_index_never_stops_an_upload(tmp_path, seeds_dir, caplog):
    settings = Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none")
    index = open_index(settings, progress=False)
    index.close()
    (tmp_path / "index" / "near_duplicates.sqlite").write_bytes(b"not a database at all " * 100)
    index = open_index(settings, progress=False)
    try:
        [change] = index.add([("tianwen.txt", f"周口天文馆开馆\n本报讯（记者 宋风）{STORY}\n".encode())])
        assert change.status == "added"
        [again] = index.add([("tianwen-2.txt", f"天文馆迎来首批观众\n本报讯（记者 李明）{STORY.replace('不少', '许多')}\n".encode())])
        assert again.duplicates == 1, "the index was made afresh and finds the reprint"
    finally:
        index.close()
    assert "近似重复索引" in caplog.text and "已重建" in caplog.text


# --- A batch into an empty near-duplicate index is looked up in memory (rag/near_memory.py) -------

def _look_alike(i: int) -> str:
    return f"这是第{i}条消息。" + "周口市今年继续推进城市更新，老旧小区改造惠及居民。" * 6


def _misread(text: str, n: int, seed: int) -> str:
    chars = list(text)
    for pos in random.Random(seed).sample(range(len(chars)), n):
        chars[pos] = "口"
    return "".join(chars)


def test_a_failed_in_memory_commit_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    """The commit drops the index by source for its bulk load: a failure part-way rolls that back too."""
    import sqlite3

    import rag.near_memory as near_memory
    from rag.near_duplicates import NearDuplicates, signature

    near = NearDuplicates(tmp_path / "near.sqlite")
    memory = near_memory.InMemory(near)
    body = "周口临港开发区召开党工委扩大会议，研究部署争创国家级经济技术开发区工作。" * 3
    memory.alone([None])
    memory.record(1, signature(body), "a.txt", "0" * 64, "标题")
    insert = near_memory._insert

    def fail_at_signatures(db, table, width, slices):
        if table == "signatures":
            raise sqlite3.OperationalError("disk full")
        insert(db, table, width, slices)

    monkeypatch.setattr(near_memory, "_insert", fail_at_signatures)
    with pytest.raises(sqlite3.OperationalError):
        memory.commit()
    near.rollback()
    assert near.empty()
    assert near.db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'holders_source'").fetchone()


def test_in_memory_lookups_answer_as_the_sqlite_index_does(tmp_path, seeds_dir):
    """Every present / find of a batch, and the rows written at its end, are those of `NearDuplicates`:
    the same candidates under the MAX_CANDIDATES cap, ties won by the same key, headlines for OCR text,
    a source read again; with band rows merged into the sorted arrays every 50 rows, and never."""
    from rag.articles import article_key, split_articles
    from rag.ingest import read_documents
    from rag.near_duplicates import MAX_CANDIDATES, NearDuplicates, signature
    from rag.near_memory import InMemory

    seeds = [(a.title, a.body) for d in read_documents(seeds_dir) for a in split_articles(d)]
    rng = random.Random(11)
    texts = [(f"第{i}条", _look_alike(i)) for i in range(3 * MAX_CANDIDATES)]  # hundreds of band rows per bucket
    texts += seeds + [(t, _misread(b, max(1, len(b) // rng.choice([40, 25, 12])), i)) for i, (t, b) in enumerate(seeds)]
    texts += [(f"第{i}条", _misread(_look_alike(i), 3, i)) for i in range(0, 3 * MAX_CANDIDATES, 7)]
    documents = [(f"doc{n % 17}.txt", f"v{n // 17}", rng.sample(texts, 30)) for n in range(40)]  # sources come back
    documents.insert(0, ("flood.txt", "v0", texts[: 3 * MAX_CANDIDATES]))  # recorded at once: none finds another
    # Equally similar candidates: texts that differ only in punctuation have one signature and two keys.
    mixed = ["".join(rng.sample([b for _, b in seeds], 3)) for _ in range(20)]
    documents.insert(3, ("ties.txt", "v0", [("甲", m.replace("，", ",")) for m in mixed] + [("乙", m.replace("，", "、")) for m in mixed]))
    documents.insert(20, ("ties-again.txt", "v0", [("丙", m.replace("，", "；")) for m in mixed]))

    stored = NearDuplicates(tmp_path / "sqlite.sqlite")
    memories = [InMemory(NearDuplicates(tmp_path / "merged.sqlite"), merge_rows=50), InMemory(NearDuplicates(tmp_path / "dict.sqlite"))]
    live: dict[str, str] = {}
    found = 0
    for source, sha, articles in documents:
        live.pop(source, None)
        for index in (stored, *memories):
            index.forget(source)
        held = []
        for title, body in articles:
            key, sig, ocr = article_key(body), signature(body), rng.random() < 0.5
            assert [m.present(key, live) for m in memories] == [stored.present(key, live)] * 2
            match = stored.find(sig, live, title, ocr) if sig is not None else None
            if sig is not None:
                assert [m.find(sig, live, title, ocr) for m in memories] == [match] * 2
            found += match is not None
            held.append((key, sig, title) if match is None else (match[0], None, title))
        for key, sig, title in held:
            for index in (stored, *memories):
                index.record(key, sig, source, sha, title)
        live[source] = sha
    assert found > 300
    for index in (stored, *memories):
        index.commit()
    for query in ("SELECT * FROM signatures ORDER BY key", "SELECT * FROM bands ORDER BY bucket, key",
                  "SELECT * FROM holders ORDER BY key, source, sha256"):
        rows = stored.db.execute(query).fetchall()
        assert all(m.near.db.execute(query).fetchall() == rows for m in memories)
    for index in (stored, *(m.near for m in memories)):
        index.close()


def test_reprints_copies_and_look_alikes_are_not_alone_in_a_batch(tmp_path, seeds_dir):
    """`InMemory.alone`: an article none of whose band buckets another article of the batch has can find
    nothing and be found by nothing; a reprint, an exact copy and look-alikes share buckets with similar
    articles, a short text has none. The SQLite index, which holds earlier batches, calls nothing alone."""
    from rag.articles import split_articles
    from rag.ingest import read_documents
    from rag.near_duplicates import NearDuplicates, signed
    from rag.near_memory import InMemory

    bodies = [a.body for d in read_documents(seeds_dir) for a in split_articles(d) if len(a.body) > 200]
    texts = [*bodies, _misread(bodies[0], 3, 0), bodies[1], _look_alike(1), _look_alike(2), "太短的通知。"]
    batch = signed(texts)
    alone = InMemory(NearDuplicates(tmp_path / "memory.sqlite")).alone(batch)
    n = len(bodies)
    assert not alone[0] and not alone[n] and not alone[1] and not alone[n + 1], "a reprint and an exact copy share buckets"
    assert not alone[n + 2] and not alone[n + 3] and not alone[n + 4]
    assert alone[2:n].all(), "the seeds' other articles share no bucket"
    assert not NearDuplicates(tmp_path / "stored.sqlite").alone(batch).any()


def test_an_article_sharing_buckets_only_with_dissimilar_ones_is_alone(tmp_path):
    """Sharing a band bucket, two articles less than TITLED_THRESHOLD similar cannot find each other: both
    are alone. Not alone: one that shares a bucket with a similar article, one beside an article whose
    lookup may stop at MAX_CANDIDATES (leaving it out could let another candidate in), one that has a
    bucket twice."""
    import numpy as np

    from rag.near_duplicates import BANDS, MAX_CANDIDATES, SIG_SIZE, TITLED_THRESHOLD, NearDuplicates, Signed
    from rag.near_memory import InMemory

    rng = np.random.default_rng(7)
    fresh = iter(range(10**6, 10**7))

    def article(*shared: int, like: np.ndarray | None = None, same: float = 0.0) -> tuple[Signed, np.ndarray]:
        sig = rng.integers(0, 2**32, SIG_SIZE, dtype=np.uint32)
        if like is not None:  # about `same` of the entries equal to `like`'s
            keep = rng.random(SIG_SIZE) < same
            sig[keep] = like[keep]
        buckets = (*shared, *(next(fresh) for _ in range(BANDS - len(shared))))
        return Signed(sig, buckets), sig

    a, a_sig = article(1)
    b, _ = article(1, 2, like=a_sig, same=TITLED_THRESHOLD - 0.2)  # shares bucket 1 with a, dissimilar
    c, _ = article(2)  # shares bucket 2 with b, dissimilar
    d, d_sig = article(3)
    e, _ = article(3, like=d_sig, same=0.9)  # similar to d
    f, _ = article(4)  # dissimilar to g, but g's lookup reads more rows than the cap
    g, _ = article(4, 5)
    crowd = [article(5)[0] for _ in range(MAX_CANDIDATES)]
    h, _ = article()
    twice = Signed(h.sig, (8, 8, *h.buckets[2:]))
    alone = InMemory(NearDuplicates(tmp_path / "near.sqlite")).alone([a, b, c, d, e, f, g, *crowd, twice, None])
    assert alone[:3].all(), "sharing buckets only with dissimilar articles"
    assert not alone[3] and not alone[4], "a similar pair"
    assert not alone[5] and not alone[6] and not alone[7 : 7 + MAX_CANDIDATES].any(), "beside a capped lookup"
    assert not alone[-2] and not alone[-1], "a bucket twice; no signature"


def test_a_rebuild_marks_the_same_near_duplicates_in_memory_as_in_sqlite(tmp_path, seeds_dir):
    """The seeds, reprints of them with misread characters, recombined articles and a flood of look-alikes
    (more band rows per bucket than a lookup reads), marked by a library whose near-duplicate index starts
    empty (in memory) and by one whose index holds a row of a document long gone (SQLite): the same marks,
    the same rows."""
    import shutil

    from rag.articles import article_key, split_articles
    from rag.backends import open_backend
    from rag.ingest import read_documents
    from rag.library import Library
    from rag.near_duplicates import MAX_CANDIDATES, _buckets, signature

    docs = tmp_path / "docs"
    shutil.copytree(seeds_dir, docs)
    seeds = [a for d in read_documents(seeds_dir) for a in split_articles(d)]
    rng = random.Random(5)
    sentences = [s for a in seeds for s in a.body.split("。") if len(s) > 10]

    def page(stories):
        return "".join(f"{title}\n本报讯（记者 李四）{body}\n\n" for title, body in stories)

    (docs / "a-reprints.txt").write_text(page((a.title + "（转载）", _misread(a.body, 3, i)) for i, a in enumerate(seeds)
                                              if len(a.body) > 200), encoding="utf-8")
    (docs / "b-mixed.txt").write_text(page((f"综合消息{i}", "。".join(rng.sample(sentences, 12)) + "。") for i in range(60)),
                                      encoding="utf-8")
    (docs / "c-flood.txt").write_text(page((f"第{i}条新闻标题", _look_alike(i)) for i in range(3 * MAX_CANDIDATES)), encoding="utf-8")
    (docs / "d-flood-again.txt").write_text(page((f"第{i}条新闻标题", _misread(_look_alike(i), 2, i)) for i in range(0, 700, 9)),
                                            encoding="utf-8")
    (docs / "e-exact.txt").write_text((docs / "b-mixed.txt").read_text(encoding="utf-8"), encoding="utf-8")
    # Equally similar candidates: texts that differ only in punctuation have one signature and two keys.
    mixed = ["。".join(rng.sample(sentences, 8)) + "。" for _ in range(30)]
    (docs / "f-ties.txt").write_text(page([(f"标题{i}", m.replace("，", ",")) for i, m in enumerate(mixed)]
                                          + [(f"标题{i}", m.replace("，", "、")) for i, m in enumerate(mixed)]), encoding="utf-8")
    (docs / "g-ties-again.txt").write_text(page((f"标题{i}", m.replace("，", "；")) for i, m in enumerate(mixed)), encoding="utf-8")

    def marked(index_dir, gone_row, workers=1):
        # Two workers and no lower bound: signed on two cores.
        settings = Settings(docs_dir=docs, index_dir=index_dir, model="none", workers=workers, parallel_min_articles=1)
        library = Library(settings, None)
        near = library.near_duplicates
        if gone_row:  # held by no document of the library: it never counts, and keeps the batch on SQLite
            near.record(12345, None, "gone.txt", "0" * 64)
            near.commit()
        assert near.empty() is not gone_row
        with open_backend(settings).writer() as writer:
            prepared = library.mark_duplicates(writer, library.prepare(library.all_items()))
        rows = [near.db.execute(q).fetchall() for q in ("SELECT * FROM signatures ORDER BY key",
                                                        "SELECT * FROM bands ORDER BY bucket, key",
                                                        "SELECT * FROM holders WHERE source != 'gone.txt' ORDER BY key, source, sha256",
                                                        "SELECT type, name, sql FROM sqlite_master ORDER BY name")]  # the index by source too
        library.close()
        return [(p.info.source, p.info.duplicates, [a.same_as for a in p.articles]) for p in prepared], rows

    in_memory, memory_rows = marked(tmp_path / "memory", False)
    in_sqlite, sqlite_rows = marked(tmp_path / "sqlite", True)
    beside, beside_rows = marked(tmp_path / "beside", False, workers=2)
    assert in_memory == in_sqlite == beside and memory_rows == sqlite_rows == beside_rows
    counts = {source: (found, sum(k is not None for k in same_as)) for source, found, same_as in in_memory}
    assert counts["a-reprints.txt"][1] > 20 and counts["d-flood-again.txt"][1] > 60 and counts["e-exact.txt"] == (60, 0)
    ties = {p: same_as for p, _, same_as in in_memory}
    keys = [article_key(a.body) for a in split_articles(next(d for d in read_documents(docs) if d.source == "f-ties.txt"))]
    assert all(k in keys for k in ties["g-ties-again.txt"]), "each found one of two equally similar articles"
    rows_per_bucket = [sum(b == bucket for b, _ in sqlite_rows[1]) for bucket in _buckets(signature(_look_alike(5)))]
    assert max(rows_per_bucket) > MAX_CANDIDATES, "a look-alike's lookup stops at the cap"


def test_documents_split_on_two_cores_as_on_one(seeds_dir, tmp_path, monkeypatch):
    """A large batch's later half is split into articles and chunks by a forked process: the same
    documents, articles and chunks, in order; a document that cannot be split is skipped with its reason
    as on one core; and if that process dies, the rest are split here."""
    import os

    from rag import forked
    from rag import library as library_module
    from rag.ingest import read_documents
    from rag.library import Library

    docs = list(read_documents(seeds_dir))
    items = [(d, library_module.DocumentInfo(d.source, d.sha256, d.kind, d.pages)) for d in docs] * 6
    settings = Settings(docs_dir=seeds_dir, index_dir=tmp_path / "index", model="none", workers=2,
                        max_articles=max(len(library_module.split_articles(d)) for d in docs) - 1)  # the largest is refused
    lib = Library(settings, None)

    def split(items, workers):
        lib.settings = settings.with_(workers=workers)
        return [(p.info, [(a.title, a.body) for a in p.articles], [(c.article, c.start, c.end, c.text) for c in p.chunks])
                for p in lib.prepare(items)]

    one_core = split(items, 1)
    assert 0 < sum(info.status == "skipped" and "文章过多" in info.reason for info, _, _ in one_core) < len(items)
    monkeypatch.setattr(library_module, "PARALLEL_MIN_CHARS", 0)
    real = forked._map

    def noting(send, fn, items, size):  # the child notes who it is and how much it split
        (tmp_path / "child").write_text(f"{os.getpid()} {len(items)}")
        real(send, fn, items, size)

    monkeypatch.setattr(forked, "_map", noting)
    here = []
    quietly = library_module._split_quietly
    monkeypatch.setattr(library_module, "_split_quietly", lambda *a: (here.append(1), quietly(*a))[1])
    assert split(items, 2) == one_core
    pid, n = map(int, (tmp_path / "child").read_text().split())
    assert pid != os.getpid() and 0.3 * len(items) < n < 0.7 * len(items)
    assert len(here) == len(items) - n, "what the child split is not split here again"

    def dies_after_one_slice(send, fn, items, size):
        real(send, fn, items[:size], size)
        os._exit(1)

    monkeypatch.setattr(forked, "_map", dies_after_one_slice)
    assert split(items, 2) == one_core
    lib.close()


def test_a_batch_naming_a_source_twice_keeps_its_last_document(tmp_path):
    """Writer.add drops what a batch replaces once per batch (per document it was quadratic: 7.7 s for
    15,090 pages); a source named twice keeps its last document, placed last, as before."""
    from rag.backends import open_backend
    from rag.backends.base import Prepared
    from rag.results import DocumentInfo

    settings = Settings(docs_dir=tmp_path, index_dir=tmp_path / "index", model="none")
    with open_backend(settings).writer() as writer:
        writer.add([Prepared(DocumentInfo(name, sha, "text")) for name, sha in (("a.txt", "1"), ("b.txt", "2"), ("c.txt", "3"))])
        writer.add([Prepared(DocumentInfo(name, sha, "text")) for name, sha in (("b.txt", "4"), ("d.txt", "5"), ("b.txt", "6"))])
        assert [(d.source, d.sha256) for d in writer.documents()] == [("a.txt", "1"), ("c.txt", "3"), ("d.txt", "5"), ("b.txt", "6")]
        writer.remove(["a.txt", "d.txt", "nowhere.txt"])
        assert [d.source for d in writer.documents()] == ["c.txt", "b.txt"]
