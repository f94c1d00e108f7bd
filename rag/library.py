"""The library: documents in, documents out, without rebuilding what did not change.

documents -> articles -> chunks -> vectors (cached by text) -> a backend writer. Three ways in:
- the docs folder (`RAG_DOCS_DIR`): synced at start; only changed files are read again;
- uploads and `python -m rag add`: a copy is kept under `<index>/files/`, so a full rebuild
  (a new model, a new tokenizer) can read every document again;
- a full rebuild: every document of both.
Every change is one writer transaction: readers see all of it or none of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import forked, fusion, progress
from .articles import Article, article_key, split_articles
from .backends.base import Prepared, Writer
from .chunks import chunk_article, sentence_spans
from .encoders import Encoder
from .encoders.cache import EmbeddingCache
from .errors import LibraryError  # raised here, defined with the others
from .ingest import SUFFIXES, Document, Unreadable, detect, read_bytes, read_file, scan_folder
from .meta import now, wants_sentences
from .near_duplicates import Lookups, NearDuplicates, sign_all
from .near_memory import InMemory
from .results import DocumentInfo
from .settings import Settings

log = logging.getLogger(__name__)

# The dense self-test: sentences sampled from the corpus, and the fewest that make a verdict.
SELF_TEST_QUERIES = 64
SELF_TEST_MIN_POOL = 8
PROGRESS_SLICE = 16  # texts embedded between two progress reports (only while someone watches)
# Texts embedded at a time into the batch's array (float16 for sentences). Embedded all at once, a batch's
# sentence vectors also existed in float32: at 100k chunks (674,766 sentences) the build's peak RSS went
# 2,598 -> 1,591 MB with slices and the segment writing them block by block.
EMBED_SLICE = 32_768
# Documents of this much text or more are split into articles and chunks on two cores, the later half of
# the text by a forked process (forked.shared): 300 generated pages (6M characters) took 3.35 s on one core,
# and sending the result back 0.5 s; a fork costs some 50 ms, 1M characters some 0.5 s of splitting.
PARALLEL_MIN_CHARS = 1_000_000
FILES = "files"
OCR_KINDS = ("scan", "image")  # documents whose text was read by OCR
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
# Stored as "<16 hex>-<name>" (and a temp name a little longer) inside Linux's 255 bytes.
MAX_NAME_BYTES = 200


@dataclass(frozen=True)
class Change:
    """What happened to one file of an add, a remove or a sync."""

    source: str
    status: str  # added, replaced, unchanged, removed, skipped, refused
    message: str
    articles: int = 0
    chunks: int = 0
    duplicates: int = 0


def _clean_name(name: str) -> str:
    """The name without path, bidi controls and characters a file name cannot hold (not shortened)."""
    name = unicodedata.normalize("NFC", str(name))
    if "\x00" in name:
        raise LibraryError("文件名含有 NUL 字符，已拒绝")
    base = re.split(r"[/\\]", name)[-1]
    # Invisible format characters go: bidi controls make a name read as something else (`news\u202Efdp.txt`
    # shows as "newstxt.pdf"), zero-width ones (U+200B, U+FEFF) make two names that look the same.
    base = "".join(ch for ch in base if unicodedata.category(ch) != "Cf")
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    if not base or base in (".", ".."):
        raise LibraryError(f"文件名无效：{name!r}")
    return base


def safe_name(name: str) -> str:
    """A file name that cannot leave the library's folder: no path, no control or bidi characters,
    no dot-start, at most MAX_NAME_BYTES bytes of UTF-8.

    A longer name keeps its start and extension and gains `~` and 8 hex digits of its hash, so two
    long names that share their start stay two documents. Raises LibraryError for names that are
    nothing but such parts (`..`, `/`, an empty name).
    """
    base = _clean_name(name)
    if len(base.encode("utf-8")) <= MAX_NAME_BYTES:
        return base
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or len(ext.encode("utf-8")) > 16:
        stem, ext = base, ""
    tail = "~" + hashlib.sha256(base.encode("utf-8")).hexdigest()[:8] + ("." + ext if ext else "")
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + tail


def name_altered(name: str) -> bool:
    """True when cleaning changed the name (a path dropped, characters replaced or removed, another
    Unicode form): two different names may then have become one, so the library never lets such a
    name replace a different document."""
    try:
        return _clean_name(name) != str(name)
    except LibraryError:
        return True


_HTML_HIDDEN = re.compile(rb"<(script|style|noscript|template)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_HTML_TAG = re.compile(rb"<[^>]*>")


def check_size(data: bytes, source: str, settings: Settings) -> None:
    """Unreadable, before the reader runs, for a web page with far more text than RAG_MAX_CHARS.

    Extracting a page's main text is slow on huge pages (a 19 MB page: 2.5 min to find it too long);
    stripping tags is not. Only a page over twice the limit is refused here: markup left behind
    (entities, menus) makes this count a little high, and the reader has the last word below that.
    """
    if len(data) <= settings.max_chars or getattr(detect(data, source), "kind", "") != "html":
        return
    visible = len(_HTML_TAG.sub(b"", _HTML_HIDDEN.sub(b"", data)).decode("utf-8", "ignore"))
    if visible > 2 * settings.max_chars:
        raise Unreadable(f"文字过多（约 {visible:,} 个字符，上限 {settings.max_chars:,}，可用 RAG_MAX_CHARS 调整）")


def check_limits(doc: Document, settings: Settings) -> None:
    """Unreadable when a document's text is longer than a newspaper file ever is (RAG_MAX_CHARS)."""
    chars = len(doc.text)
    if chars > settings.max_chars:
        raise Unreadable(f"文字过多（{chars:,} 个字符，上限 {settings.max_chars:,}，可用 RAG_MAX_CHARS 调整）")


def sentence_table(articles: list[Article], hard_max: int) -> tuple[np.ndarray, list[str]]:
    """Every sentence of every article: (m, 3) int32 rows (article index, start, end), sorted, and the texts."""
    return body_sentence_table([a.body for a in articles], hard_max)


def body_sentence_table(bodies: list[str], hard_max: int) -> tuple[np.ndarray, list[str]]:
    """`sentence_table` over article bodies."""
    rows, texts = [], []
    for a_id, body in enumerate(bodies):
        for s, e in sentence_spans(body, hard_max):
            while e > s and body[e - 1].isspace():
                e -= 1
            if e > s:
                rows.append((a_id, s, e))
                texts.append(body[s:e])
    return np.array(rows, dtype=np.int32).reshape(-1, 3), texts


class Library:
    """Prepares documents and applies changes through a backend writer."""

    def __init__(self, settings: Settings, encoder: Encoder | None, progress: bool = False, defer_vectors: bool = False):
        self.settings = settings
        self.encoder = encoder
        self.progress = progress
        # Serve first, embed after: prepare() stores no vectors; rag/dense_fill.py adds them later.
        self.defer_vectors = defer_vectors
        self.files = Path(settings.index_dir) / FILES
        self._cache: EmbeddingCache | None = None
        self._near: NearDuplicates | None = None
        # embedded/cached count chunks; sentences_* the sentence vectors (RAG_SENTENCE_VECTORS)
        self.stats = {"embedded": 0, "cached": 0, "sentences_embedded": 0, "sentences_cached": 0,
                      "read_s": 0.0, "embed_s": 0.0, "duplicates_s": 0.0}
        self.self_test: float | None = None  # set by a full rebuild (`rebuild`)

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(Path(self.settings.index_dir) / "embeddings.sqlite")
        return self._cache

    @property
    def near_duplicates(self) -> NearDuplicates:
        if self._near is None:
            self._near = NearDuplicates(Path(self.settings.index_dir) / "near_duplicates.sqlite")
        return self._near

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._near is not None:
            self._near.close()
            self._near = None

    def mark_duplicates(self, writer: Writer, prepared: list[Prepared]) -> list[Prepared]:
        """Articles already in the library, exactly or nearly (a reprint, a scan of a stored page):
        a near duplicate takes the stored article's key (`Article.same_as`), so the backend stores it
        once and lists both files; each document's `duplicates` counts both kinds. Returns `prepared`
        in the order to store them: documents read by OCR last, so that of a page and its scan added
        together the text layer is the copy kept."""
        prepared = sorted(prepared, key=lambda p: p.info.kind in OCR_KINDS)
        started = time.perf_counter()
        try:
            with self.near_duplicates.lock:
                self._mark_duplicates(writer, prepared)
        except sqlite3.Error as exc:  # never stops a change: exact reprints are still stored once
            log.warning("近似重复检测失败（%s）：本次只识别完全相同的文章", exc)
            if self._near is not None:
                self._near.rollback()
            for p in prepared:
                for article in p.articles:
                    article.same_as = None
        self.stats["duplicates_s"] += round(time.perf_counter() - started, 3)
        return prepared

    def _mark_duplicates(self, writer: Writer, prepared: list[Prepared]) -> None:
        # Started empty (a full rebuild, a first build), the index is looked up in memory and written at the end.
        near: Lookups = InMemory(self.near_duplicates) if self.near_duplicates.empty() else self.near_duplicates
        batch = {p.info.source for p in prepared}
        # What the library holds once this batch is in: documents it replaces no longer count.
        live = {d.source: d.sha256 for d in writer.documents() if d.status == "ok" and d.source not in batch}
        bodies = [a.body for p in prepared if p.info.status == "ok" for a in p.articles]
        # A large batch is signed on both cores.
        signed = sign_all(bodies, beside=self.settings.workers > 1 and len(bodies) >= self.settings.parallel_min_articles)
        alone = near.alone(signed).tolist()
        at = 0
        for i, p in enumerate(prepared):
            if p.info.status != "ok":
                continue
            near.forget(p.info.source)
            found, held = 0, []
            for article in p.articles:
                key, sign, by_itself = article_key(article.body), signed[at], alone[at]
                at += 1
                if by_itself:  # nothing to find, not even an exact copy: that would share its buckets
                    pass
                elif near.present(key, live):
                    found += 1
                elif sign is not None and (match := near.find(sign.sig, live, article.title, p.info.kind in OCR_KINDS,
                                                              sign.buckets)) is not None:
                    article.same_as = match[0]
                    found += 1
                held.append((article.same_as if article.same_as is not None else key, sign if article.same_as is None else None,
                             article.title, by_itself))
            # Recorded once the document is looked up: its own articles are no duplicates of it (it is not in
            # `live` yet), and a file of thousands of look-alikes would make every lookup read all earlier ones.
            for key, sign, title, by_itself in held:
                near.record(key, sign.sig if sign else None, p.info.source, p.info.sha256, title,
                            sign.buckets if sign else None, by_itself)
            live[p.info.source] = p.info.sha256
            if found:
                prepared[i].info = DocumentInfo(**{**asdict(p.info), "duplicates": found})
        del signed  # its band buckets (Python ints: some 0.8 GB at 1M) go before the commit's arrays come
        near.commit()

    # --- documents -> prepared ---------------------------------------------------------------------

    def prepare(self, items: list[tuple[Document | None, DocumentInfo]]) -> list[Prepared]:
        """Split, chunk and embed documents (one batch, one progress bar). A None document is a skipped file."""
        s = self.settings
        started = time.perf_counter()
        out = []
        progress.begin(progress.Stage.SPLIT, len(items))
        readable = [(doc, info) for doc, info in items if doc is not None]
        sizes = [len(doc.text) for doc, _ in readable]
        if s.workers > 1 and len(readable) > 1 and sum(sizes) >= PARALLEL_MIN_CHARS and forked.available():
            done = forked.shared(lambda item: _split_quietly(*item, s), readable, sizes)
        else:
            done = (_split_quietly(doc, info, s) for doc, info in readable)
        for doc, info in items:
            progress.advance(progress.Stage.SPLIT)
            if doc is None:
                out.append(Prepared(info))
                continue
            try:
                # None: the split failed (in the child, which must not log): done again here, where it raises.
                out.append(next(done) or _split(doc, info, s))
            except Exception as exc:  # one bad document is skipped with its reason, never the whole change
                reason = str(exc) if isinstance(exc, Unreadable) else _failed(info.source, exc)
                out.append(Prepared(DocumentInfo(**{**asdict(info), "status": "skipped", "reason": reason})))
        self.stats["read_s"] += round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        if self.encoder is not None and not self.defer_vectors:
            texts = [c.embed_text for p in out for c in p.chunks]
            if texts:
                if self.progress:
                    log.info("向量化 %d 个文本块（%s）…", len(texts), self.encoder.label)
                vectors = self._embed(texts, "", "向量化文本块", "块")
                row = 0
                for p in out:
                    p.vectors = vectors[row : row + len(p.chunks)]
                    row += len(p.chunks)
            if wants_sentences(s, self.encoder):
                self._embed_sentences(out)
            self.stats["embed_s"] += round(time.perf_counter() - started, 3)
        return out

    def _embed(self, texts: list[str], kind: str, desc: str, unit: str, dtype: type = np.float32) -> np.ndarray:
        """Vectors of `texts` through the cache, as `dtype`; counted in stats under `kind` ("" chunks,
        "sentences_"). Embedded a slice at a time into one array: PROGRESS_SLICE texts while a watcher
        wants counts (progress.Stage), else EMBED_SLICE."""
        encoder = self.encoder
        assert encoder is not None  # only called when the dense leg is on
        watched = progress.watched() and len(texts) > PROGRESS_SLICE
        step = PROGRESS_SLICE if watched else EMBED_SLICE
        if len(texts) <= step:
            return self._encode(texts, kind, desc, unit, self.progress).astype(dtype, copy=False)
        from tqdm import tqdm

        stage = progress.Stage.SENTENCES if kind else progress.Stage.EMBED
        if watched:
            progress.begin(stage, len(texts))
        out: np.ndarray = np.empty((len(texts), encoder.dim), dtype=dtype)
        with tqdm(total=len(texts), desc=desc, unit=unit, disable=not self.progress, mininterval=1.0) as bar:
            for start in range(0, len(texts), step):
                part = texts[start : start + step]
                out[start : start + len(part)] = self._encode(part, kind, desc, unit, False)
                bar.update(len(part))
                if watched:
                    progress.advance(stage, len(part))
        return out

    def _encode(self, texts: list[str], kind: str, desc: str, unit: str, show: bool) -> np.ndarray:
        """One call to the encoder (through the cache when it is cacheable): float32 vectors."""
        encoder = self.encoder
        assert encoder is not None
        batch = self.settings.batch_size or encoder.batch_size
        if encoder.cacheable:
            vectors, embedded = self.cache.encode(encoder, texts, batch, show, desc, unit)
        else:
            vectors, embedded = encoder.encode_passages(texts, batch, show), len(texts)
        self.stats[f"{kind}embedded"] += embedded
        self.stats[f"{kind}cached"] += len(texts) - embedded
        return vectors

    def _embed_sentences(self, prepared: list[Prepared]) -> None:
        """Every sentence of every prepared article, embedded through the same cache as the chunks
        (so a changed page re-embeds only its own sentences); stored as float16."""
        tables = [sentence_table(p.articles, self.settings.chunk_hard_max) if p.articles else None for p in prepared]
        texts = [t for table in tables if table is not None for t in table[1]]
        if self.progress and texts:
            log.info("向量化 %d 个句子（供语义检索与回答选句）…", len(texts))
        dim = self.encoder.dim if self.encoder is not None else 0
        vectors = self._embed(texts, "sentences_", "向量化句子", "句", np.float16) if texts else np.zeros((0, dim), np.float16)
        row = 0
        for p, table in zip(prepared, tables):
            if table is None:
                continue
            rows, part = table
            p.sentences = rows
            p.sentence_vectors = vectors[row : row + len(part)]
            row += len(part)

    def measure_self_test(self, prepared: list[Prepared]) -> float | None:
        """fusion.self_test on up to SELF_TEST_QUERIES sentences (15+ characters) sampled from `prepared`.

        Run at full rebuilds, so that a model that cannot read the corpus's language (an English-only
        model over Chinese pages) is not fused. Not run for encoders that give a text a different vector
        each time (random vectors for timing): there is no model to judge.
        """
        if self.encoder is None or not self.encoder.cacheable:
            return None
        pool, blocks = [], []
        for p in prepared:
            if p.vectors is None or not p.articles:
                continue
            keys = np.fromiter((article_key(a.body) for a in p.articles), dtype=np.uint64, count=len(p.articles))
            blocks.append((p.vectors, keys[[c.article for c in p.chunks]].astype(np.int64)))
            rows, texts = sentence_table(p.articles, self.settings.chunk_hard_max)
            pool += [(text, int(keys[row[0]])) for row, text in zip(rows, texts) if len(text) >= 15]
        if len(pool) < SELF_TEST_MIN_POOL:
            return None  # too small a corpus to judge
        rng = np.random.default_rng(0)
        picked = sorted(rng.choice(len(pool), size=min(SELF_TEST_QUERIES, len(pool)), replace=False))
        queries = np.stack([self.encoder.encode_query(pool[i][0]) for i in picked])
        targets = np.array([pool[i][1] for i in picked], dtype=np.uint64).astype(np.int64)
        return round(fusion.self_test(queries, blocks, targets), 4)

    # --- the docs folder ---------------------------------------------------------------------------

    def _folder_item(self, path: Path, rel: str, size: int, mtime_ns: int) -> tuple[Document | None, DocumentInfo]:
        try:
            if path.suffix.lower() in (".html", ".htm") and 0 < size <= self.settings.ingest.max_file_bytes:
                check_size(path.read_bytes(), rel, self.settings)
            with progress.counting(progress.Stage.OCR) as ocr_pages:
                doc = read_file(path, rel, self.settings.ingest)
            check_limits(doc, self.settings)
        except Exception as exc:  # Unreadable, or any other reader failure: skipped, never the whole sync
            reason = str(exc) if isinstance(exc, Unreadable) else _failed(rel, exc)
            log.warning("跳过 %s：%s", rel, reason)
            digest = _sha256(path)
            return None, DocumentInfo(rel, digest, "unknown", added_at=now(), status="skipped", reason=reason,
                                      origin="folder", size=size, mtime_ns=mtime_ns)
        return doc, DocumentInfo(rel, doc.sha256, _kind(doc, ocr_pages[0]), doc.pages, added_at=now(), origin="folder",
                                 size=size, mtime_ns=mtime_ns)

    def prepare_folder(self, stale: list[tuple]) -> dict[tuple[str, int, int], Prepared]:
        """Read and prepare the changed files of the docs folder (`folder_changes`' stale list) before the
        writer lock is taken: reading a scan or embedding a long file takes minutes. Keyed by
        (name, size, mtime_ns), so that `sync_folder` uses only what still matches the file."""
        fresh = [(path, rel, st) for old, path, rel, st in stale
                 if not (old is not None and old.origin == "folder" and old.sha256 == _sha256(path))]
        items = [self._folder_item(path, rel, st.st_size, st.st_mtime_ns) for path, rel, st in fresh]
        prepared = self.prepare(items) if items else []
        return {(rel, st.st_size, st.st_mtime_ns): p for (_, rel, st), p in zip(fresh, prepared)}

    def sync_folder(self, writer: Writer, ahead: dict[tuple[str, int, int], Prepared] | None = None) -> list[Change]:
        """Bring the folder's documents up to date in `writer`: only new, changed and deleted files cost anything.

        `ahead` holds files prepared before the lock (`prepare_folder`); a file changed since is read now.
        """
        known = {d.source: d for d in writer.documents()}
        stale, gone = folder_changes(self.settings, known)
        todo, changes = [], []
        for old, path, rel, st in stale:
            if old is not None and old.origin == "stored":
                log.warning("文档目录中的 %s 与已上传的文档同名，以文档目录中的文件为准", rel)
            # Touched but not changed: remember the new stamp so it is not hashed at every start.
            same = old is not None and old.origin == "folder" and old.sha256 == _sha256(path)
            todo.append((old, path, rel, st, same))
        if gone:
            writer.remove(gone)
            changes += [Change(s, "removed", "文件已从文档目录删除") for s in gone]
        restamp = [(old, st) for old, _, _, st, same in todo if same]
        if restamp:
            writer.restamp({old.source: (st.st_size, st.st_mtime_ns) for old, st in restamp})
            changes += [Change(old.source, "touched", "文件时间变了，内容未变") for old, _ in restamp]
        fresh = [(old, path, rel, st) for old, path, rel, st, same in todo if not same]
        ready = dict(ahead or {})
        keys = [(rel, st.st_size, st.st_mtime_ns) for _, _, rel, st in fresh]
        late = [(path, rel, st) for (_, path, rel, st), key in zip(fresh, keys) if key not in ready]
        if late:  # new or changed again since it was prepared
            items = [self._folder_item(path, rel, st.st_size, st.st_mtime_ns) for path, rel, st in late]
            ready.update({(rel, st.st_size, st.st_mtime_ns): p for (_, rel, st), p in zip(late, self.prepare(items))})
        prepared = [ready[key] for key in keys]
        if prepared:
            writer.add(self.mark_duplicates(writer, prepared))
            for (old, *_), p in zip(fresh, prepared):
                changes.append(_change(p.info, "replaced" if old is not None else "added"))
        return changes

    def all_items(self, stored: set[str] | None = None) -> list[tuple[Document | None, DocumentInfo]]:
        """Every document the library holds the original of: the docs folder, then the stored copies
        (only those named in `stored` when given: an upload killed before its commit left an orphan).
        Its time counts as reading (`stats["read_s"]`)."""
        started = time.perf_counter()
        items = [self._folder_item(path, rel, st.st_size, st.st_mtime_ns)
                 for path, rel in scan_folder(Path(self.settings.docs_dir)) if (st := path.stat())]
        names = {info.source for _, info in items}
        for path in sorted(self.files.glob("*")) if self.files.is_dir() else []:
            source = _stored_source(path.name)
            if source is None or source in names or path.name.startswith("."):
                continue
            if stored is not None and path.name not in stored:
                continue
            try:
                with progress.counting(progress.Stage.OCR) as ocr_pages:
                    doc = read_file(path, source, self.settings.ingest)
                check_limits(doc, self.settings)
            except Exception as exc:
                log.warning("跳过已存储的 %s：%s", source, str(exc) if isinstance(exc, Unreadable) else _failed(source, exc))
                continue
            names.add(source)
            items.append((doc, DocumentInfo(source, doc.sha256, _kind(doc, ocr_pages[0]), doc.pages, added_at=_mtime(path),
                                            origin="stored", stored=path.name, size=path.stat().st_size)))
        self.stats["read_s"] += round(time.perf_counter() - started, 3)
        return items

    def rebuild(self, writer: Writer) -> list[Change]:
        committed = None if writer.recovering else {d.stored for d in writer.documents() if d.origin == "stored"}
        writer.clear()
        try:
            with self.near_duplicates.lock:
                self.near_duplicates.clear()
        except sqlite3.Error as exc:
            log.warning("近似重复索引无法清空（%s）：本次重建只识别完全相同的文章", exc)
        items = self.all_items(committed)
        if not any(doc is not None for doc, _ in items):
            raise LibraryError(f"文档目录 {self.settings.docs_dir} 中没有可索引的文档（支持 {'、'.join(SUFFIXES)}）")
        prepared = self.prepare(items)
        self.self_test = self.measure_self_test(prepared)
        if self.self_test is not None and self.self_test < fusion.SELF_TEST_MIN:
            log.warning("语义模型自检：只为 %.0f%% 的抽样句子找回其文章，混合检索将只用关键词检索", 100 * self.self_test)
        writer.add(self.mark_duplicates(writer, prepared))
        return [_change(p.info, "added") for p in prepared]

    # --- uploads and `rag add` ---------------------------------------------------------------------

    def add(self, writer: Writer, files: list[tuple[str, bytes]]) -> list[Change]:
        """Add (name, content) pairs inside one writer (`Index.add` prepares outside the lock instead)."""
        return self.commit_uploads(writer, self.prepare_uploads(files, {d.source: d for d in writer.documents()}))

    def prepare_uploads(self, files: list[tuple[str, bytes]], known: dict[str, DocumentInfo]) -> list[Upload]:
        """Read, check, split, chunk and embed uploaded files: the slow part, done without the writer lock.

        `known` is the library as last committed; `commit_uploads` checks again under the lock.
        Each file's outcome is its own: a bad name or a bad file never stops the others.
        """
        uploads: list[Upload] = []
        items: list[tuple[Document | None, DocumentInfo]] = []
        waiting: list[Upload] = []
        seen: dict[str, str] = {}  # source -> sha256 within this request
        for name, data in files:
            up = Upload(str(name), data=data)
            uploads.append(up)
            try:
                up.source = safe_name(name)
            except LibraryError as exc:
                up.change = Change(str(name)[:80], "refused", str(exc))
                continue
            old = known.get(up.source)
            if old is not None and old.origin == "folder":
                up.change = Change(up.source, "refused", FOLDER_CLASH)
                continue
            try:
                check_size(data, up.source, self.settings)
                progress.begin(progress.Stage.READ)
                with progress.counting(progress.Stage.OCR) as ocr_pages:
                    doc = read_bytes(data, up.source, self.settings.ingest)
                check_limits(doc, self.settings)
            except Exception as exc:  # Unreadable, or any other reader failure: this file only
                reason = str(exc) if isinstance(exc, Unreadable) else _failed(up.source, exc)
                up.change = Change(up.source, "refused", f"无法读取：{reason}")
                continue
            up.sha256 = doc.sha256
            if up.source in seen:
                up.change = (Change(up.source, "unchanged", "与同一次上传中的另一文件相同") if seen[up.source] == doc.sha256
                             else Change(up.source, "refused", _clash(name, up.source, "同一次上传中的另一个文件")))
                continue
            seen[up.source] = doc.sha256
            up.change = self._decided(up, old)
            if up.change is not None:
                continue
            items.append((doc, DocumentInfo(up.source, doc.sha256, _kind(doc, ocr_pages[0]), doc.pages, added_at=now(), origin="stored",
                                            stored=_stored_name(up.source, doc.sha256), size=len(data))))
            waiting.append(up)
        for up, p in zip(waiting, self.prepare(items) if items else []):
            if p.info.status != "ok":
                up.change = Change(up.source, "refused", p.info.reason)
            else:
                up.prepared = p
        return uploads

    def commit_uploads(self, writer: Writer, uploads: list[Upload]) -> list[Change]:
        """Store prepared uploads in `writer` (short: the originals are written, nothing is parsed)."""
        progress.begin(progress.Stage.SAVE)
        known = {d.source: d for d in writer.documents()}
        changes: list[Change | None] = [up.change for up in uploads]
        todo, kinds, rows = [], [], []
        for row, up in enumerate(uploads):
            if up.change is not None or up.prepared is None:
                continue
            old = known.get(up.source)
            decided = Change(up.source, "refused", FOLDER_CLASH) if old is not None and old.origin == "folder" else self._decided(up, old)
            if decided is not None:  # the library changed while this file was being read
                changes[row] = decided
                continue
            self._store(up.source, up.sha256, up.data)
            todo.append(up.prepared)
            kinds.append("replaced" if old is not None else "added")
            rows.append(row)
            known[up.source] = up.prepared.info
        if todo:
            writer.add(self.mark_duplicates(writer, todo))  # same objects, reordered: `todo` keeps the rows
            for row, p, kind in zip(rows, todo, kinds):
                changes[row] = _change(p.info, kind)
        return [c for c in changes if c is not None]

    @staticmethod
    def _decided(up: Upload, old: DocumentInfo | None) -> Change | None:
        """The outcome known without storing anything: identical content, or a name that would replace another file."""
        if old is None:
            return None
        if old.sha256 == up.sha256 and old.status == "ok":
            return Change(up.source, "unchanged", "内容与已有文档相同，未做改动", old.articles, old.chunks)
        if name_altered(up.name):
            return Change(up.source, "refused", _clash(up.name, up.source, "资料库中已有的另一篇文档"))
        return None

    def _store(self, source: str, sha256: str, data: bytes) -> str:
        """Keep the original inside the index folder (durably: a committed document must be rebuildable)."""
        self.files.mkdir(parents=True, exist_ok=True)
        name = _stored_name(source, sha256)
        path = self.files / name
        if not path.exists():
            tmp = self.files / f".{name}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        return name

    def remove(self, writer: Writer, sources: list[str]) -> list[Change]:
        known = {d.source: d for d in writer.documents()}
        changes, drop = [], []
        for source in sources:
            doc = known.get(source)
            if doc is None:
                raise LibraryError(f"资料库中没有名为 {source!r} 的文档（用 python -m rag list 查看）")
            if doc.origin == "folder":
                raise LibraryError(f"{source} 来自文档目录 {self.settings.docs_dir}：请从该目录中删除文件，索引会随之更新")
            drop.append(source)
            changes.append(Change(source, "removed", "已删除", doc.articles, doc.chunks))
        writer.remove(drop)
        return changes

    def collect_files(self, writer: Writer) -> None:
        """Stored originals no document refers to any more (after a remove, a replace, a crash)."""
        if not self.files.is_dir():
            return
        wanted = {d.stored for d in writer.documents() if d.origin == "stored"}
        for path in self.files.iterdir():
            if path.name not in wanted:
                path.unlink(missing_ok=True)


def folder_changes(settings: Settings, known: dict[str, DocumentInfo]) -> tuple[list[tuple], list[str]]:
    """Files of the docs folder whose size or mtime differs from `known` (old info or None, path, rel, stat),
    and folder documents whose file is gone. Only stats files: cheap enough to run every few seconds."""
    seen, stale = set(), []
    for path, rel in scan_folder(Path(settings.docs_dir)):
        seen.add(rel)
        try:
            st = path.stat()
        except OSError as exc:
            log.warning("跳过无法读取的文件 %s：%s", rel, exc)
            continue
        old = known.get(rel)
        if old is None or old.origin != "folder" or old.size != st.st_size or old.mtime_ns != st.st_mtime_ns:
            stale.append((old, path, rel, st))
    gone = [s for s, d in known.items() if d.origin == "folder" and s not in seen]
    return stale, gone


def _kind(doc: Document, ocr_pages: int) -> str:
    """The library's kind of a document: a PDF read (in part) by OCR is a "scan", so that the library can say so
    (the document itself keeps its reader's kind, which decides how it is split)."""
    return "scan" if ocr_pages and doc.kind == "pdf" else doc.kind


def _stored_source(name: str) -> str | None:
    prefix, dash, source = name.partition("-")
    return source if dash and len(prefix) == 16 and re.fullmatch(r"[0-9a-f]{16}", prefix) and source else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")


def _change(info: DocumentInfo, kind: str) -> Change:
    if info.status != "ok":
        return Change(info.source, "skipped", info.reason)
    words = {"added": "已添加", "replaced": "已更新"}[kind]
    return Change(info.source, kind, f"{words}：{info.articles} 篇文章、{info.chunks} 个文本块", info.articles, info.chunks)


FOLDER_CLASH = "与文档目录中的文件同名；请改名后再上传，或直接修改文档目录中的文件"


@dataclass
class Upload:
    """One uploaded file on its way in: prepared without the writer lock, committed under it."""

    name: str  # as the client gave it
    source: str = ""  # its name in the library (safe_name)
    data: bytes = b""
    sha256: str = ""
    prepared: Prepared | None = None
    change: Change | None = None  # the outcome, once decided before the commit (refused, unchanged)


def _stored_name(source: str, sha256: str) -> str:
    return f"{sha256[:16]}-{source}"


def _clash(given: str, source: str, other: str) -> str:
    return (f"文件名 {str(given)[:120]!r} 整理后为 {source!r}，与{other}重名；内容不同，未替换。请改名后再上传"
            f"（the name collides with a different file after cleaning; rename it）")


def _split(doc: Document, info: DocumentInfo, s: Settings) -> Prepared:
    """A document's articles and chunks; raises for one that cannot be split."""
    articles = split_articles(doc)
    if len(articles) > s.max_articles:
        raise Unreadable(f"文章过多（{len(articles):,} 篇，上限 {s.max_articles:,}，可用 RAG_MAX_ARTICLES 调整）")
    chunks = [c for i, a in enumerate(articles) for c in chunk_article(a, i, s.chunk_min, s.chunk_max, s.chunk_hard_max)]
    return Prepared(DocumentInfo(**{**asdict(info), "articles": len(articles), "chunks": len(chunks)}), articles, chunks)


def _split_quietly(doc: Document, info: DocumentInfo, s: Settings) -> Prepared | None:
    try:
        return _split(doc, info, s)
    except Exception:  # noqa: BLE001  # told by None; `prepare` splits it again to report why
        return None


def _failed(source: str, exc: Exception) -> str:
    """The reason shown for an unexpected reader failure (logged with its stack)."""
    log.error("读取 %s 时出错", source, exc_info=exc)
    return f"读取时出错（{type(exc).__name__}），已跳过"
