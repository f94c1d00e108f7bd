"""Near-duplicate articles: a reprint, or a scan of a page already stored as text, found by its text.

Exact reprints share `article_key` and are stored once by the backends. A scan read by OCR, or a
reprint with a changed character or two, does not: its text differs slightly. Each article's text
is reduced to its letters, digits and CJK characters, cut into character 5-grams, and summarised
by a MinHash signature (SIG_SIZE minimums of multiply-shift hashes), whose share of equal entries
estimates the Jaccard similarity of the two articles' 5-gram sets. Signatures are indexed by
locality-sensitive hashing (BANDS bands of ROWS entries): two articles are compared only when a
whole band agrees, so a lookup costs a few SQLite index probes however large the archive is.
An article whose best match is at least THRESHOLD similar (TITLED_THRESHOLD when the headlines
agree: a poor scan) is the same article: it takes the stored article's key (`Article.same_as`), and
the backend lists its file as another source of that article.

The index lives beside the embedding cache (`<index>/near_duplicates.sqlite`) and records which
document (name and content hash) holds each key, so an article counts as present only while a
document of the library still holds it: removed and replaced documents need no bookkeeping. A
full rebuild starts it afresh, and a batch that starts with it empty is looked up in memory and
written to it once, at its end (rag/near_memory.py). numpy MinHash rather than datasketch: its LSH
keeps the index in memory (or Redis/Cassandra), and this one must persist with the index and be
checked for liveness.
"""

from __future__ import annotations

import difflib
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import xxhash

from . import forked

log = logging.getLogger(__name__)

SHINGLE = 5  # characters per shingle
SIG_SIZE = 120
BANDS, ROWS = 30, 4  # candidates from about (1/BANDS)^(1/ROWS) = 0.43 similarity; 0.55 is found 94% of the time
# Estimated Jaccard similarity from which two articles are one. A scan's OCR errors or a reprint's
# edits leave 0.8-1.0; the estimate's spread (about 0.04) must not lift articles that merely share
# some sentences (0.4-0.5) over it: 64 entries and 0.6 did, on 20,000 recombined seed articles.
THRESHOLD = 0.7
# A poor scan (blurred, noisy, 150 dpi) leaves 0.55-0.7: enough for a text read by OCR when the
# headlines agree too (not for typeset text: a recurring column under one headline shares its template).
TITLED_THRESHOLD = 0.55
TITLE_MIN = 6  # characters a headline needs to count as evidence
TITLE_RATIO = 0.8  # difflib ratio of the normalised headlines that counts as the same headline
MIN_CHARS = 40  # shorter articles (a notice, a caption) are matched only exactly
# Band rows read per lookup. An article shares a band with a handful of others in a real archive; a library
# holding thousands of look-alikes (a hostile file, a daily template) would make each lookup read them all.
# Capped, a lookup costs the same however many there are (it may then miss the best of them, not all).
MAX_CANDIDATES = 256
# Documents by name (`forget`). Created after a bulk load (rag/near_memory.py): 754k rows inserted with it took 20 s at 1M.
SOURCE_INDEX = "CREATE INDEX IF NOT EXISTS holders_source ON holders (source)"
CACHE_KIB = 262_144  # SQLite page cache of the index, at most (see NearDuplicates._open)
_KEEP = re.compile(r"[^0-9a-z\u3400-\u9fff\uf900-\ufaff]+")
_rng = np.random.default_rng(20240614)
_A = (_rng.integers(1, 2**63, SIG_SIZE, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)  # odd multipliers
_B = _rng.integers(0, 2**63, SIG_SIZE, dtype=np.uint64)
_BASE = np.uint64(0x100000001B3)


def _signed(key: int) -> int:
    """An unsigned 64-bit key as SQLite's signed INTEGER."""
    return key - 2**64 if key >= 2**63 else key


def signature(text: str) -> np.ndarray | None:
    """MinHash signature (SIG_SIZE uint32) of `text`'s character 5-grams; None when too short to judge."""
    return signatures([text])[0]


def signatures(texts: Sequence[str]) -> list[np.ndarray | None]:
    """`signature` of each text, in one numpy pass over all of them: for news articles numpy's cost per
    call outweighed the arithmetic (10,000 generated articles: 0.62 s one at a time, 0.28-0.35 s in
    groups of 16-32). A 5-gram never spans two texts, so each text's signature is what it is alone."""
    norms = [_KEEP.sub("", t.lower()) for t in texts]
    kept = [i for i, norm in enumerate(norms) if len(norm) >= MIN_CHARS]
    out: list[np.ndarray | None] = [None] * len(texts)
    if not kept:
        return out
    lengths = np.fromiter((len(norms[i]) for i in kept), dtype=np.int64, count=len(kept))
    codes = np.frombuffer("".join(norms[i] for i in kept).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    counts = lengths - SHINGLE + 1  # each text's 5-grams
    firsts = np.cumsum(counts) - counts  # where each text's 5-grams start among all
    n = len(codes) - SHINGLE + 1
    with np.errstate(over="ignore"):
        shingles = np.zeros(n, dtype=np.uint64)
        for j in range(SHINGLE):  # a polynomial hash of each 5-gram, wrapping at 2**64
            shingles = shingles * _BASE + codes[j : j + n]
        # Those starting in one text and ending in the next are skipped.
        shingles = shingles[np.arange(int(counts.sum())) + np.repeat(np.cumsum(lengths) - lengths - firsts, counts)]
        hashed = np.multiply(_A[:, None], shingles[None, :])
        hashed += _B[:, None]
    # A repeated shingle cannot change a minimum (no np.unique needed), and the shift is monotonic, so
    # the minimum of the shifted hashes is the shifted minimum: the same signature with a third less work.
    sigs = np.ascontiguousarray((np.minimum.reduceat(hashed, firsts, axis=1) >> np.uint64(32)).astype(np.uint32).T)
    for i, sig in zip(kept, sigs):
        out[i] = sig
    return out


class Signed(NamedTuple):
    """A text's MinHash signature and its band buckets (`_buckets`), computed together."""

    sig: np.ndarray
    buckets: tuple[int, ...]


def signed(texts: Sequence[str]) -> list[Signed | None]:
    """`signatures` of `texts` with their buckets; None for a text too short to judge."""
    return [None if sig is None else Signed(sig, tuple(_buckets(sig))) for sig in signatures(texts)]


SIGN_CHARS = 8192  # characters signed in one pass: (SIG_SIZE x 8k) hashes, 7.5 MB, stay in the cache
SIGN_SLICE = 16  # groups of texts a forked process sends back at a time


def sign_all(texts: Sequence[str], beside: bool = False) -> list[Signed | None]:
    """`signed` of each text, in order, SIGN_CHARS or so at a time. `beside`: the later half by a forked
    process while this one signs the first (rag/forked.py `shared`; what that process fails to send is
    signed here)."""
    groups: list[list[str]] = []
    group: list[str] = []
    size = 0
    for text in texts:
        if group and size + len(text) > SIGN_CHARS:
            groups.append(group)
            group, size = [], 0
        group.append(text)
        size += len(text)
    if group:
        groups.append(group)
    if beside and len(groups) > 1 and forked.available():
        done = forked.shared(signed, groups, [sum(map(len, g)) for g in groups], slice_size=SIGN_SLICE)
    else:
        done = map(signed, groups)
    return [s for part in done for s in part]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the 5-gram sets behind two signatures."""
    return float(np.mean(a == b))


def _title(title: str) -> str:
    return _KEEP.sub("", title.lower())


def same_title(a: str, b: str) -> bool:
    """Headlines that agree up to OCR errors (normalised, at least TITLE_MIN characters)."""
    a, b = _title(a), _title(b)
    return min(len(a), len(b)) >= TITLE_MIN and difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= TITLE_RATIO


def _buckets(sig: np.ndarray) -> list[int]:
    rows = sig.reshape(BANDS, ROWS)
    return [_signed(xxhash.xxh3_64_intdigest(band.tobytes(), seed=b)) for b, band in enumerate(rows)]


def choose(keys: Sequence[int], stored: np.ndarray, titles: Sequence[str], sig: np.ndarray, title: str, ocr: bool,
           present: Callable[[int], bool]) -> tuple[int, float] | None:
    """(key, similarity) of the most similar `present` candidate that counts as the same article (see
    `NearDuplicates.find`), or None. Candidates are `keys` (signed) with their signatures `stored` and headlines
    `titles`; of equally similar ones the earlier wins, so both lookups must list them in the same order."""
    scores = (stored == sig).mean(axis=1)  # similarity() of each candidate, at once
    for i in np.argsort(-scores, kind="stable"):
        score = float(scores[i])
        if score < TITLED_THRESHOLD:
            break
        if score < THRESHOLD and not (ocr and same_title(title, titles[i])):
            continue
        key = keys[i] + 2**64 if keys[i] < 0 else keys[i]
        if present(key):
            return key, score
    return None


class Lookups(Protocol):
    """What a batch looks its articles up in and records them to: the index itself (`NearDuplicates`), or,
    when the batch starts with it empty, an in-memory copy written to it at `commit` (rag/near_memory.py)."""

    def forget(self, source: str) -> None: ...

    def present(self, key: int, live: dict[str, str]) -> bool: ...

    def alone(self, signed: Sequence[Signed | None]) -> np.ndarray:
        """For each of a batch's articles, in order, before any is recorded: True when its lookup can find
        nothing and no later lookup can find it, so that both may be skipped (`record(..., alone=True)`)."""
        ...

    def find(self, sig: np.ndarray, live: dict[str, str], title: str = "", ocr: bool = False,
             buckets: Sequence[int] | None = None) -> tuple[int, float] | None:
        """`buckets`: `_buckets(sig)` when already known."""
        ...

    def record(self, key: int, sig: np.ndarray | None, source: str, sha256: str, title: str = "",
               buckets: Sequence[int] | None = None, alone: bool = False) -> None:
        """`alone`: as `alone` found it."""
        ...

    def commit(self) -> None: ...


class NearDuplicates:
    """The persistent LSH index of the library's articles (one writer at a time: the library's)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()  # the app's upload, watcher and CLI threads share one library
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            # Only near duplicates against what is already stored go unnoticed until the next full rebuild.
            log.warning("近似重复索引 %s 已损坏（%s），已重建；在下次完整重建前只能识别完全相同的文章", self.path, exc)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        # A full rebuild records every article in one transaction: with SQLite's default 2 MB page cache,
        # the band rows (30 an article, in random order) spill to the file over and over. Up to 256 MB
        # (used only as the index grows): 200,000 articles recorded in 36.3 s instead of 50.4 s.
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        db.executescript("""
            CREATE TABLE IF NOT EXISTS signatures (key INTEGER PRIMARY KEY, sig BLOB NOT NULL, title TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS bands (bucket INTEGER NOT NULL, key INTEGER NOT NULL,
                                              PRIMARY KEY (bucket, key)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS holders (key INTEGER NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL,
                                                PRIMARY KEY (key, source, sha256)) WITHOUT ROWID;
        """)
        db.execute(SOURCE_INDEX)
        db.execute("SELECT count(*) FROM (SELECT 1 FROM signatures LIMIT 1)").fetchone()
        return db

    def close(self) -> None:
        self.db.close()

    def empty(self) -> bool:
        """Nothing recorded: a full rebuild cleared it, or it was just made."""
        return all(self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
                   for table in ("signatures", "bands", "holders"))

    def clear(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM signatures")
            self.db.execute("DELETE FROM bands")
            self.db.execute("DELETE FROM holders")

    def present(self, key: int, live: dict[str, str]) -> bool:
        """Whether a document of `live` (name -> content hash) holds the article `key`."""
        rows = self.db.execute("SELECT source, sha256 FROM holders WHERE key = ?", (_signed(key),))
        return any(live.get(source) == sha for source, sha in rows)

    def alone(self, signed: Sequence[Signed | None]) -> np.ndarray:
        """None is: any stored article may share a bucket with the batch's."""
        return np.zeros(len(signed), dtype=bool)

    def find(self, sig: np.ndarray, live: dict[str, str], title: str = "", ocr: bool = False,
             buckets: Sequence[int] | None = None) -> tuple[int, float] | None:
        """(key, similarity) of the most similar present article: at least THRESHOLD similar, or, for a
        text read by OCR (`ocr`), TITLED_THRESHOLD under the same headline; None when there is none."""
        buckets = list(_buckets(sig) if buckets is None else buckets)
        marks = ",".join("?" * len(buckets))
        # Rows come back in ascending (signed) key order: SQLite gathers the subquery's keys in a sorted
        # ephemeral index, then looks each up (rag/near_memory.py gives the same order, and `choose` needs it).
        candidates = self.db.execute(
            f"SELECT key, sig, title FROM signatures WHERE key IN "
            f"(SELECT key FROM bands WHERE bucket IN ({marks}) LIMIT {MAX_CANDIDATES})", buckets).fetchall()
        if not candidates:
            return None
        stored = np.frombuffer(b"".join(blob for _, blob, _ in candidates), dtype=np.uint32).reshape(len(candidates), -1)
        return choose([key for key, _, _ in candidates], stored, [t for _, _, t in candidates], sig, title, ocr,
                      lambda key: self.present(key, live))

    def forget(self, source: str) -> None:
        """Drop what a document held (it is being read again)."""
        self.db.execute("DELETE FROM holders WHERE source = ?", (source,))

    def record(self, key: int, sig: np.ndarray | None, source: str, sha256: str, title: str = "",
               buckets: Sequence[int] | None = None, alone: bool = False) -> None:
        """Document (source, sha256) holds the article `key` (headline `title`); `sig` indexes it (None:
        already indexed, or too short) under `buckets` (`_buckets(sig)` when None). Nothing is `alone` here."""
        k = _signed(key)
        self.db.execute("INSERT OR IGNORE INTO holders VALUES (?, ?, ?)", (k, source, sha256))
        if sig is not None and self.db.execute("SELECT 1 FROM signatures WHERE key = ?", (k,)).fetchone() is None:
            self.db.execute("INSERT INTO signatures VALUES (?, ?, ?)", (k, sig.tobytes(), title))
            self.db.executemany("INSERT OR IGNORE INTO bands VALUES (?, ?)",
                                [(b, k) for b in (_buckets(sig) if buckets is None else buckets)])

    def commit(self) -> None:
        self.db.commit()

    def rollback(self) -> None:
        try:
            self.db.rollback()
        except sqlite3.Error:
            pass  # the connection itself is gone; the file keeps its last commit
