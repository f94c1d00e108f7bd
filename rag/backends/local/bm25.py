"""BM25 over segments, with statistics that stay global after adds and deletes.

bm25s bakes idf and document-length normalisation into the stored scores, so a corpus that
changes would need a full rebuild. Here each immutable segment stores raw term frequencies
(column-major, one column per token, tokens identified by a 64-bit hash) and document
lengths; scores are computed at query time from the live documents of every segment:

    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))          N, df over live documents
    score(d) = sum_t  w(t) * idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))

which is bm25s's "lucene" variant with its default k1 and b: a single-segment index scores
exactly as `bm25s.BM25().index(tokens)` does (tests/test_bm25.py checks this, also after deletes).
"""

from __future__ import annotations

import dataclasses
import itertools
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xxhash

from ...bm25_math import K1, B, idf_array

ARRAYS = ("hashes", "indptr", "docs", "tf", "lengths")


def token_hash(token: str) -> int:
    return xxhash.xxh3_64_intdigest(token.encode("utf-8"))


class _Vocab(dict):
    """Token -> id, a new token getting the next id on first lookup: `map(vocab.__getitem__, tokens)`
    then runs in C for every token already seen, which is nearly all of them."""

    def __missing__(self, token: str) -> int:
        self[token] = n = len(self)
        return n


class FieldBuilder:
    """Accumulates documents as sparse rows (token ids and term frequencies); no token strings are kept
    beyond the vocabulary.

    Documents are taken PART_DOCS at a time: their tokens become ids in one pass and their (document,
    token) counts come from one sort, which is what a pass and a `np.unique` per document gave at
    several times the cost. `write` scatters each part straight into the final column-major arrays and
    frees it, so building needs about 12 bytes per (document, token) entry at peak: 1M chunks must
    build in 8 GB.
    """

    PART_DOCS = 4096

    def __init__(self):
        self.vocab: dict[str, int] = _Vocab()
        self._parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (documents, token ids, tfs)
        self._pending: list[list[str]] = []  # token lists of the documents not yet in a part
        self._nnz = array("i")  # entries per document
        self.lengths = array("i")  # tokens per document

    def add(self, tokens: list[str]) -> None:
        self._pending.append(tokens)
        self.lengths.append(len(tokens))
        if len(self._pending) >= self.PART_DOCS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        docs, self._pending = self._pending, []
        sizes = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        total = int(sizes.sum())
        ids = np.fromiter(map(self.vocab.__getitem__, itertools.chain.from_iterable(docs)), dtype=np.int64, count=total)
        # One key per (document, token id): sorted, they are each document's np.unique in document order.
        keys, counts = np.unique(np.repeat(np.arange(len(docs), dtype=np.int64), sizes) << 32 | ids, return_counts=True)
        self._nnz.extend(np.bincount(keys >> 32, minlength=len(docs)).astype(np.int32).tolist())
        self._parts.append((len(docs), (keys & 0xFFFFFFFF).astype(np.int32), np.minimum(counts, 65535).astype(np.uint16)))

    def __len__(self) -> int:
        return len(self.lengths)

    def write(self, folder: Path, name: str) -> dict:
        """Write `name.<array>.npy` files; returns the field's totals {docs, total_len}."""
        self._flush()
        hashes = np.fromiter((token_hash(t) for t in self.vocab), dtype=np.uint64, count=len(self.vocab))
        self.vocab = {}
        # Columns sorted by hash; two tokens with the same 64-bit hash would share one column.
        uniq, column = np.unique(hashes, return_inverse=True)
        column = column.astype(np.int32)
        n_cols = len(uniq)
        df = np.zeros(n_cols, dtype=np.int64)
        for _, toks, _ in self._parts:
            df += np.bincount(column[toks], minlength=n_cols)
        indptr = np.zeros(n_cols + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        docs = np.empty(indptr[-1], dtype=np.int32)
        tf = np.empty(indptr[-1], dtype=np.uint16)
        fill = indptr[:-1].copy()  # next free slot of each column
        nnz = np.frombuffer(self._nnz, dtype=np.int32)
        doc0 = 0
        while self._parts:
            n, toks, tfs = self._parts.pop(0)
            rows = np.repeat(np.arange(doc0, doc0 + n, dtype=np.int32), nnz[doc0 : doc0 + n])
            # By column, documents ascending within it: (column, position) keys sorted, which is a stable
            # argsort by column at 0.4x its time (400k entries: 7.4 against 18.5 ms).
            key = column[toks].astype(np.int64) << 32 | np.arange(len(toks), dtype=np.int64)
            key.sort()
            order = key & 0xFFFFFFFF
            cols, rows, tfs = key >> 32, rows[order], tfs[order]
            first = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
            rank = np.arange(len(cols)) - np.repeat(first, np.diff(np.r_[first, len(cols)]))
            slots = fill[cols] + rank
            docs[slots] = rows
            tf[slots] = tfs
            fill += np.bincount(cols, minlength=n_cols)
            doc0 += n
        lengths = np.frombuffer(self.lengths, dtype=np.int32).copy()
        if len(uniq) < len(hashes):  # merged columns may hold a document twice: keep one entry
            docs, tf, indptr = _dedupe_columns(docs, tf, indptr)
        save_field(folder, name, uniq, indptr, docs, tf, lengths)
        return {"docs": int(len(lengths)), "total_len": int(lengths.sum())}


def _dedupe_columns(docs, tf, indptr):
    col = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    key = col.astype(np.int64) * (2**31) + docs
    uniq, inverse = np.unique(key, return_inverse=True)
    merged_tf = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(merged_tf, inverse, tf)
    new_col = (uniq // 2**31).astype(np.int64)
    new_indptr = np.zeros_like(indptr)
    np.cumsum(np.bincount(new_col, minlength=len(indptr) - 1), out=new_indptr[1:])
    return (uniq % 2**31).astype(np.int32), np.minimum(merged_tf, 65535).astype(np.uint16), new_indptr


def save_field(folder: Path, name: str, hashes, indptr, docs, tf, lengths) -> None:
    for key, value in zip(ARRAYS, (hashes, indptr, docs, tf, lengths)):
        np.save(folder / f"{name}.{key}.npy", value)


def field_files(name: str) -> list[str]:
    return [f"{name}.{key}.npy" for key in ARRAYS]


@dataclass
class Field:
    """One field of one segment, memory-mapped."""

    hashes: np.ndarray  # uint64, sorted
    indptr: np.ndarray
    docs: np.ndarray  # int32 local document ids, ascending within a column
    tf: np.ndarray  # uint16
    lengths: np.ndarray  # int32 tokens per document

    @classmethod
    def load(cls, folder: Path, name: str, mmap: bool = True) -> Field:
        mode: Literal["r"] | None = "r" if mmap else None
        arrays = [np.asarray(np.load(folder / f"{name}.{key}.npy", mmap_mode=mode)) for key in ARRAYS]
        field = cls(*arrays)
        if len(field.indptr) != len(field.hashes) + 1 or int(field.indptr[-1]) != len(field.docs) or len(field.docs) != len(field.tf):
            raise ValueError(f"BM25 字段 {name} 的数组长度不一致")
        return field

    @property
    def n_docs(self) -> int:
        return len(self.lengths)

    def postings(self, h: int) -> tuple[np.ndarray, np.ndarray] | None:
        i = int(np.searchsorted(self.hashes, np.uint64(h)))
        if i >= len(self.hashes) or int(self.hashes[i]) != h:
            return None
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.docs[a:b], self.tf[a:b]

    def column_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hash, doc, tf) of every entry, for merging segments."""
        return np.repeat(self.hashes, np.diff(self.indptr)), np.asarray(self.docs), np.asarray(self.tf)


@dataclass
class Part:
    """A field of one segment as a snapshot sees it: live documents and their place in the global id space."""

    field: Field
    offset: int  # global id of the segment's first document
    live: np.ndarray | None  # bool per document; None when all are live
    _norm: tuple[float, np.ndarray] | None = dataclasses.field(default=None, repr=False, compare=False)

    def length_norm(self, avg_len: float) -> np.ndarray:
        """K1 * (1 - B + B * len(d) / avglen) per document, float32: the query-independent part of BM25,
        computed once per mean length instead of for every posting of every query."""
        cached = self._norm
        if cached is None or cached[0] != avg_len:
            lengths = self.field.lengths.astype(np.float32)
            cached = self._norm = (avg_len, K1 * (1 - B + B * lengths / np.float32(avg_len)))
        return cached[1]


def statistics(parts: list[Part]) -> tuple[int, float]:
    """(live documents, their mean length) over all parts."""
    n, total = 0, 0
    for p in parts:
        lengths = p.field.lengths if p.live is None else p.field.lengths[p.live]
        n += len(lengths)
        total += int(lengths.sum(dtype=np.int64))
    return n, (total / n if n else 1.0)


def hits(parts: list[Part], weights: dict[str, float], n_live: int, avg_len: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(global doc id, float32 BM25 term score) of every live posting of the query's tokens, token by token;
    None when no token occurs. A document appears once per token it holds: sum per document to score it."""
    found = []  # (part, doc ids, tfs, term weight * idf)
    for token, w in weights.items():
        h = token_hash(token)
        postings, df = [], 0
        for p in parts:
            posting = p.field.postings(h)
            if posting is None:
                continue
            docs, tf = posting
            if p.live is not None:
                keep = p.live[docs]
                docs, tf = docs[keep], tf[keep]
            if len(docs):
                postings.append((p, docs, tf))
                df += len(docs)
        if df:
            weight = np.float32(w * idf_array(df, n_live))
            found += [(p, docs, tf, weight) for p, docs, tf in postings]
    if not found:
        return None
    # Written in place into the two outputs (no temporaries to concatenate): a common bigram's posting
    # list can hold most of the archive. The same float32 operations as weight * tf / (tf + norm).
    total = sum(len(docs) for _, docs, _, _ in found)
    out_docs, out_values = np.empty(total, dtype=np.int32), np.empty(total, dtype=np.float32)
    start = 0
    for p, docs, tf, weight in found:
        end = start + len(docs)
        out_docs[start:end] = docs
        if p.offset:
            out_docs[start:end] += p.offset
        values = out_values[start:end]
        np.take(p.length_norm(avg_len), docs, out=values)
        values += tf
        np.divide(weight * tf, values, out=values)
        start = end
    return out_docs, out_values


def scores(parts: list[Part], weights: dict[str, float], n_live: int, avg_len: float, size: int) -> np.ndarray | None:
    """BM25 of every document (global ids, dead ones 0), max-normalised; None when no token occurs."""
    found = hits(parts, weights, n_live, avg_len)
    if found is None:
        return None
    out = np.bincount(found[0], weights=found[1], minlength=size)
    top = out.max()
    return out / top if top > 0 else None


def document_frequency(parts: list[Part], tokens: list[str]) -> dict[str, int]:
    out = {}
    for token in dict.fromkeys(tokens):
        h, df = token_hash(token), 0
        for p in parts:
            posting = p.field.postings(h)
            if posting is not None:
                df += len(posting[0]) if p.live is None else int(p.live[posting[0]].sum())
        if df:
            out[token] = df
    return out


def merge_fields(fields: list[Field], keep: list[np.ndarray | None], folder: Path, name: str) -> dict:
    """One field from several, keeping only documents marked in `keep` (renumbered in order)."""
    all_hashes, all_docs, all_tf, all_lengths = [], [], [], []
    base = 0
    for field, live in zip(fields, keep):
        hashes, docs, tf = field.column_arrays()
        if live is not None:
            new_id = np.cumsum(live) - 1
            mask = live[docs]
            hashes, docs, tf = hashes[mask], new_id[docs[mask]], tf[mask]
            lengths = np.asarray(field.lengths)[live]
        else:
            lengths = np.asarray(field.lengths)
        all_hashes.append(hashes)
        all_docs.append(docs.astype(np.int32) + base)
        all_tf.append(tf)
        all_lengths.append(lengths)
        base += len(lengths)
    hashes = np.concatenate(all_hashes)
    docs = np.concatenate(all_docs)
    tf = np.concatenate(all_tf)
    order = np.lexsort((docs, hashes))
    hashes, docs, tf = hashes[order], docs[order], tf[order]
    uniq, counts = np.unique(hashes, return_counts=True)
    indptr = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    lengths = np.concatenate(all_lengths).astype(np.int32) if all_lengths else np.zeros(0, np.int32)
    save_field(folder, name, uniq, indptr, docs, tf, lengths)
    return {"docs": int(len(lengths)), "total_len": int(lengths.sum())}
