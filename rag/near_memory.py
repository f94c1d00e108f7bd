"""The near-duplicate index of a batch that starts with it empty, held in memory and written once.

`NearDuplicates` looks each article up with SQLite queries and records it with some 33 inserts; on the
generated 100k-chunk corpus those were most of the check's 24-28 s. When a batch starts with the index
empty (a full rebuild, a first build), all a lookup can find is what this batch recorded, so `InMemory`
keeps that instead: holders in a dict, signatures in one array sized for the batch, band rows in numpy arrays
sorted as SQLite keeps them (the newest in a dict). `commit` writes every row at once, in primary key
order, so that SQLite appends to its B-trees. The tables end up as `NearDuplicates` would leave them,
and each lookup returns what it would return: the same candidates in the same order (`_candidates`).
An article that no lookup can pair with another of the batch (`alone`: it shares no band bucket with one
at least TITLED_THRESHOLD similar to it) skips its lookup, and its band rows join the arrays only at
`commit`, so lookups search the others' rows alone.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .near_duplicates import MAX_CANDIDATES, SIG_SIZE, SOURCE_INDEX, TITLED_THRESHOLD, NearDuplicates, Signed, _buckets, _signed, choose

MERGE_ROWS = 1 << 20  # newest band rows kept in the dict: about 76 bytes a row there (80 MB), 16 in the arrays
# Bits of the filter per band row of the arrays, at least. Most of a lookup's 30 buckets are in no band row:
# binary searches through the arrays to learn so cost 37 us a lookup at 2.27M rows (cache misses), 76 us
# at 22.6M; the filter answers for all 30 in 10-12 us, and passes at most one absent bucket in 8 on to them.
FILTER_BITS = 8
# Rows are written as many to a statement as SQLite's parameters allow (999 before 3.32): one row to a
# statement wrote the 100k build's 2.27M band rows in 4.3 s, 500 to a statement in 1.6 s. They are made
# into Python objects a slice at a time: all at once, the 1M build's 22M band rows would take some 2 GB.
PARAMETERS = 999
WRITE_SLICE = 1 << 17
MIN_ROWS = 1 << 14  # rows the signature array starts with when `alone` has not sized it (7.5 MB)
PAIR_SLICE = 1 << 16  # article pairs compared at a time by `alone` (2 x 30 MB of signatures)


class InMemory:
    """`NearDuplicates`' lookups and records for one batch, over what the batch recorded (see the module)."""

    def __init__(self, near: NearDuplicates, merge_rows: int = MERGE_ROWS):
        self.near = near
        self.merge_rows = merge_rows
        self._docs: list[tuple[str, str]] = []  # (source, sha256) of each holding document
        self._doc_ids: dict[tuple[str, str], int] = {}
        self._sources: set[str] = set()
        self._holders: dict[int, list[int]] = {}  # key (signed, as stored) -> its documents
        self._rows: dict[int, int] = {}  # key -> row of its signature and headline
        self._sigs = np.empty((0, SIG_SIZE), dtype=np.uint32)  # row -> signature: one array, so a lookup takes its candidates' rows at once
        self._titles: list[str] = []
        self._bucket = np.empty(0, dtype=np.int64)  # band rows, sorted by (bucket, key) as SQLite keeps them
        self._key = np.empty(0, dtype=np.int64)
        self._filter = np.zeros(1, dtype=np.uint8)  # bit `bucket % its size` set: the arrays may hold the bucket
        # Band rows not merged into the arrays yet: a bucket's first key, and the rest of a bucket with several.
        self._first: dict[int, int] = {}
        self._more: dict[int, list[int]] = {}
        self._recent_rows = 0
        self._alone: list[tuple[int, tuple[int, ...]]] = []  # (key, buckets) of articles recorded `alone`

    def forget(self, source: str) -> None:
        """Drop what a document held. A batch names each document once: only a second mention finds any."""
        if source not in self._sources:
            return
        gone = {i for i, (s, _) in enumerate(self._docs) if s == source}
        for key, docs in list(self._holders.items()):
            if kept := [d for d in docs if d not in gone]:
                self._holders[key] = kept
            else:
                del self._holders[key]
        self._sources.discard(source)

    def present(self, key: int, live: dict[str, str]) -> bool:
        docs = self._holders.get(_signed(key), ())
        return any(live.get(source) == sha for source, sha in (self._docs[d] for d in docs))

    def alone(self, signed: Sequence[Signed | None]) -> np.ndarray:
        """The batch's articles that no lookup can pair with another: all a lookup can find is this batch's own
        articles, through a shared band bucket. An article is alone when every article it shares a bucket with
        is less than TITLED_THRESHOLD similar to it (most share none), so it finds nothing and nothing finds it,
        and when no lookup that would list it as a candidate stops at MAX_CANDIDATES, where leaving it out would
        let another candidate in. Left out too: a bucket an article has twice (its rows must be distinct).
        Generated corpus (a finite pool of sentences, recombined): 38 % of 1M chunks' articles share no bucket,
        and 42 % more share buckets only with dissimilar ones; a real archive's unrelated articles rarely share
        a bucket (reprints and recurring columns do, and they are similar)."""
        if self._titles:
            raise RuntimeError("alone() must see the batch before anything is recorded")
        self._reserve(sum(s is not None for s in signed))  # at most one row each: no copy as the rows grow
        own = [s.buckets if s is not None else () for s in signed]
        sizes = np.fromiter(map(len, own), dtype=np.int64, count=len(own))
        bucket = np.fromiter(itertools.chain.from_iterable(own), dtype=np.int64, count=int(sizes.sum()))
        order = np.argsort(bucket)
        bucket = bucket[order]
        owner = np.repeat(np.arange(len(own), dtype=np.int32), sizes)[order]  # int32 and freed early: 22M rows at 1M
        del order
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(bucket) else np.zeros(0, dtype=np.int64)
        del bucket
        counts = np.diff(np.r_[starts, len(owner)]).astype(np.int32)
        # At most this many rows a lookup of the article reads (its own buckets' rows, itself included).
        load = np.bincount(owner, weights=np.repeat(counts, counts), minlength=len(own)).astype(np.int32)
        capped = np.maximum.reduceat(load[owner], starts) > MAX_CANDIDATES if len(starts) else np.zeros(0, dtype=bool)
        paired = np.zeros(len(own), dtype=bool)
        paired[owner[np.repeat(capped, counts)]] = True  # a bucket with a member whose lookup may be capped
        shared = (counts > 1) & ~capped
        members = np.unique(owner[np.repeat(shared, counts)])
        at = np.zeros(len(own), dtype=np.int64)
        at[members] = np.arange(len(members))
        # Articles in a shared bucket have buckets, so a signature.
        table = np.stack([signed[i].sig for i in members.tolist()]) if len(members) else None
        for first, second in _pairs(owner, starts[shared], counts[shared]):
            paired[first[first == second]] = True
            similar = (table[at[first]] == table[at[second]]).mean(axis=1) >= TITLED_THRESHOLD  # type: ignore[index]
            paired[first[similar]] = True
            paired[second[similar]] = True
        return (sizes > 0) & ~paired

    def find(self, sig: np.ndarray, live: dict[str, str], title: str = "", ocr: bool = False,
             buckets: Sequence[int] | None = None) -> tuple[int, float] | None:
        keys = self._candidates(set(_buckets(sig) if buckets is None else buckets))
        if not keys:
            return None
        rows = np.fromiter(map(self._rows.__getitem__, keys), dtype=np.int64, count=len(keys))
        return choose(keys, self._sigs[rows], [self._titles[r] for r in rows.tolist()], sig, title, ocr,
                      lambda key: self.present(key, live))

    def _candidates(self, buckets: set[int]) -> list[int]:
        """The keys `NearDuplicates.find`'s query returns. SQLite reads the buckets in ascending order, each
        once, and a bucket's band rows in ascending key order (its primary key), stops after MAX_CANDIDATES
        rows, and returns their keys once each, ascending (they pass through a sorted ephemeral index).
        Like it, this reads at most MAX_CANDIDATES rows of the arrays and of the dict however full a bucket is."""
        spans: dict[int, tuple[int, int]] = {}  # bucket -> its rows in the arrays
        if len(self._bucket):
            query = np.fromiter(buckets, dtype=np.int64, count=len(buckets))
            bit = query & (8 * len(self._filter) - 1)
            query = query[(self._filter[bit >> 3] >> (bit & 7)) & 1 == 1]
            lo = np.searchsorted(self._bucket, query)
            hi = np.searchsorted(self._bucket, query, "right")
            for bucket, start, end in zip(query.tolist(), lo.tolist(), hi.tolist()):
                if end > start:
                    spans[bucket] = (start, end)
        recent = self._first.keys() & buckets
        read: list[int] = []
        for bucket in sorted(spans.keys() | recent):
            start, end = spans.get(bucket, (0, 0))
            room = MAX_CANDIDATES - len(read)
            keys = self._key[start : min(end, start + room)].tolist()
            if bucket in recent:
                keys = sorted(keys + [self._first[bucket], *self._more.get(bucket, ())])[:room]
            read += keys
            if len(read) == MAX_CANDIDATES:
                break
        return sorted(set(read))

    def record(self, key: int, sig: np.ndarray | None, source: str, sha256: str, title: str = "",
               buckets: Sequence[int] | None = None, alone: bool = False) -> None:
        """`alone` (see `alone`): the band rows go straight to those written at `commit`, which no lookup reads."""
        k = _signed(key)
        doc = self._doc_ids.setdefault((source, sha256), len(self._docs))
        if doc == len(self._docs):
            self._docs.append((source, sha256))
            self._sources.add(source)
        docs = self._holders.setdefault(k, [])
        if doc not in docs:
            docs.append(doc)
        if sig is None or k in self._rows:
            return
        row = self._rows[k] = len(self._titles)
        if row == len(self._sigs):
            self._reserve(max(2 * row, MIN_ROWS))
        self._sigs[row] = sig
        self._titles.append(title)
        if alone:
            self._alone.append((k, tuple(_buckets(sig) if buckets is None else buckets)))  # distinct: see `alone`
            return
        distinct = set(_buckets(sig) if buckets is None else buckets)  # once each, as INSERT OR IGNORE keeps them
        shared = self._first.keys() & distinct  # buckets that hold a row already: rare
        crowded = False  # a lookup must not sort more than about MAX_CANDIDATES keys of the dict
        for bucket in shared:
            more = self._more.setdefault(bucket, [])
            more.append(k)
            crowded |= len(more) >= MAX_CANDIDATES
        self._first.update(dict.fromkeys(distinct - shared if shared else distinct, k))
        self._recent_rows += len(distinct)
        if crowded or self._recent_rows >= self.merge_rows:
            self._merge()

    def _reserve(self, rows: int) -> None:
        if rows > len(self._sigs):
            grown = np.empty((rows, SIG_SIZE), dtype=np.uint32)
            grown[: len(self._titles)] = self._sigs[: len(self._titles)]
            self._sigs = grown

    def _merge(self) -> None:
        more = [(bucket, k) for bucket, keys in self._more.items() for k in keys]
        bucket = np.fromiter(itertools.chain(self._first, (b for b, _ in more)), dtype=np.int64, count=self._recent_rows)
        key = np.fromiter(itertools.chain(self._first.values(), (k for _, k in more)), dtype=np.int64, count=self._recent_rows)
        self._add_rows(bucket, key)
        self._first, self._more, self._recent_rows = {}, {}, 0
        if 8 * len(self._filter) >= FILTER_BITS * len(self._bucket):
            _mark(self._filter, bucket)
        else:  # made anew four times the size it needs, so that this happens a few times a batch
            self._filter = np.zeros(1 << (4 * FILTER_BITS * len(self._bucket) // 8).bit_length(), dtype=np.uint8)
            _mark(self._filter, self._bucket)

    def commit(self) -> None:
        """Write what the batch recorded, in one transaction, each table in primary key order."""
        self._merge()
        self._merge_alone()
        db = self.near.db
        if not db.in_transaction:  # sqlite3 runs DDL outside one: the index dropped below must come back on a rollback
            db.execute("BEGIN")
        holders = ((k, *doc) for k in sorted(self._holders) for doc in sorted(self._docs[d] for d in self._holders[k]))
        db.execute("DROP INDEX IF EXISTS holders_source")  # made again at once after the rows: one sort, not a random insert a row
        _insert(db, "holders", 3, _slices(holders))
        db.execute(SOURCE_INDEX)
        signatures = ((k, self._sigs[r].tobytes(), self._titles[r]) for k, r in sorted(self._rows.items()))
        _insert(db, "signatures", 3, _slices(signatures))
        _insert(db, "bands", 2, (np.column_stack((self._bucket[i : i + WRITE_SLICE], self._key[i : i + WRITE_SLICE])).ravel().tolist()
                                 for i in range(0, len(self._bucket), WRITE_SLICE)))
        self.near.commit()

    def _merge_alone(self) -> None:
        """The band rows of the articles recorded `alone` into the arrays, where their buckets sort (keys sorted
        within a bucket that other rows have too)."""
        if not self._alone:
            return
        sizes = np.fromiter((len(b) for _, b in self._alone), dtype=np.int64, count=len(self._alone))
        bucket = np.fromiter(itertools.chain.from_iterable(b for _, b in self._alone), dtype=np.int64, count=int(sizes.sum()))
        key = np.repeat(np.fromiter((k for k, _ in self._alone), dtype=np.int64, count=len(self._alone)), sizes)
        self._alone = []  # at 1M, 18M buckets as Python ints (some 0.6 GB) once the caller has let go of them too
        self._add_rows(bucket, key)

    def _add_rows(self, bucket: np.ndarray, key: np.ndarray) -> None:
        """Band rows into the sorted arrays, where their buckets sort (keys sorted within a bucket that other
        rows have too). Each copy is freed as soon as the next exists: at 1M the commit's merge is the near-
        duplicate check's peak of memory."""
        order = np.argsort(bucket, kind="stable")
        bucket = bucket[order]
        key = key[order]
        del order
        at = np.searchsorted(self._bucket, bucket)
        self._bucket = np.insert(self._bucket, at, bucket)
        del bucket
        self._key = np.insert(self._key, at, key)
        del key
        at += np.arange(len(at))
        _sort_shared(self._bucket, self._key, at)


def _pairs(owner: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every two rows of each group (`owner[start : start + count]`), as their owners, PAIR_SLICE or so at a time."""
    for n in np.unique(counts).tolist():
        first, second = np.triu_indices(n, 1)
        group = starts[counts == n]
        step = max(1, PAIR_SLICE // len(first))
        for lo in range(0, len(group), step):
            at = group[lo : lo + step, None]
            yield owner[(at + first).ravel()], owner[(at + second).ravel()]


def _mark(bits: np.ndarray, buckets: np.ndarray) -> None:
    bit = buckets & (8 * len(bits) - 1)
    np.bitwise_or.at(bits, bit >> 3, np.left_shift(1, bit & 7).astype(np.uint8))


def _sort_shared(bucket: np.ndarray, key: np.ndarray, new: np.ndarray) -> None:
    """Sort the keys of each bucket that the rows at `new` (just inserted) share with others: sorted by
    bucket only, their keys may be out of order. Shared buckets are few: 8,700 of 2.24M at 100k chunks
    (generated corpus), 306,000 of 22.6M at 1M."""
    last = len(bucket) - 1
    before = (new > 0) & (bucket[np.maximum(new - 1, 0)] == bucket[new])
    after = (new < last) & (bucket[np.minimum(new + 1, last)] == bucket[new])
    runs = np.unique(bucket[new[before | after]])
    for start, end in zip(np.searchsorted(bucket, runs).tolist(), np.searchsorted(bucket, runs, "right").tolist()):
        key[start:end].sort()


def _slices(rows: Iterator[tuple]) -> Iterator[list]:
    """The fields of `rows` one after another, WRITE_SLICE rows at a time."""
    return iter(lambda: list(itertools.chain.from_iterable(itertools.islice(rows, WRITE_SLICE))), [])


def _insert(db: sqlite3.Connection, table: str, width: int, slices: Iterable[list]) -> None:
    """Rows of `width` fields, given one after another in slices, as many to a statement as PARAMETERS allows."""
    row = f"({', '.join('?' * width)})"
    step = PARAMETERS // width * width
    many = f"INSERT INTO {table} VALUES " + ", ".join([row] * (step // width))
    for values in slices:
        whole = len(values) - len(values) % step
        db.executemany(many, (values[i : i + step] for i in range(0, whole, step)))
        db.executemany(f"INSERT INTO {table} VALUES {row}", (values[i : i + width] for i in range(whole, len(values), width)))
