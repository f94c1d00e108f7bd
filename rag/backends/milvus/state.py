"""Committed states in Milvus: generations by version rows, because Milvus has no transactions.

Nothing a writer stores is ever changed in place where a reader could see it:

- a commit is one row of the commits collection, `generation` G, written last;
- a document's record is a *version* row tagged with the generation that wrote it; a removal is a
  tombstone version. A reader of G takes, per source, the newest version with gen <= G, so rows a
  writer has stored for G+1 stay invisible until the commit row G+1 exists (and a dead writer's rows
  are undone by the next writer before it starts);
- articles and chunks are content-addressed rows, live in G exactly when a document version of G
  lists them. They are deleted only when no document lists them and a grace period has passed, so a
  request that pinned an older generation can still read them.
"""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import xxhash

from ...results import DocumentInfo
from ..base import IndexCorrupt

# Document versions and removed articles stay readable this long after a commit supersedes them:
# far longer than any request, so a reader pinned to the previous generation never loses a row.
GRACE_S = 60.0
REFS_PER_ROW = 4000  # (int64 article, int32 chunks) pairs, base64 in one VARCHAR(65535)
MASK63 = (1 << 63) - 1
_REF = np.dtype([("article", "<i8"), ("chunks", "<i4")])


def stable_id(*parts) -> int:
    """A non-negative int64 from its parts: deterministic, so re-running a write upserts the same rows."""
    return xxhash.xxh3_64_intdigest("\x1f".join(map(str, parts)).encode("utf-8")) & MASK63


def pack_refs(refs: list[tuple[int, int]]) -> str:
    return base64.b64encode(np.array(refs, dtype=_REF).tobytes()).decode("ascii")


def unpack_refs(text: str) -> list[tuple[int, int]]:
    if not text:
        return []
    arr = np.frombuffer(base64.b64decode(text), dtype=_REF)
    return [(int(a), int(c)) for a, c in arr]


@dataclass
class Commit:
    generation: int
    created: float
    layout: dict  # name, dim, lexical, avglen, ... (see layout.py)
    vector_key: str | None
    meta: dict

    @classmethod
    def from_row(cls, row: dict) -> Commit:
        try:
            return cls(int(row["generation"]), float(row["created"]), json.loads(row["layout"]),
                       row["vector_key"] or None, json.loads(row["meta"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise IndexCorrupt(f"Milvus 中第 {row.get('generation', '?')} 代提交记录已损坏：{exc}") from exc

    def row(self) -> dict:
        return {"generation": self.generation, "created": self.created, "layout": json.dumps(self.layout),
                "vector_key": self.vector_key or "", "meta": json.dumps(self.meta, ensure_ascii=False), "_v": [0.0, 0.0]}


@dataclass
class DocVersion:
    """One version of one document: what a commit says the document is (or that it is gone)."""

    source: str
    gen: int
    seq: int  # document order: new and replaced documents go last, as in the local backend
    removed: bool = False
    info: DocumentInfo | None = None
    refs: list[tuple[int, int]] = field(default_factory=list)  # (article id, its chunks), document order

    def rows(self) -> list[dict]:
        parts = [self.refs[i : i + REFS_PER_ROW] for i in range(0, len(self.refs), REFS_PER_ROW)] or [[]]
        info = json.dumps(asdict(self.info), ensure_ascii=False) if self.info is not None else ""
        return [
            {"id": stable_id(self.source, self.gen, p), "source": self.source, "gen": self.gen, "part": p,
             "parts": len(parts), "seq": self.seq, "removed": self.removed, "info": info if p == 0 else "",
             "refs": pack_refs(part), "_v": [0.0, 0.0]}
            for p, part in enumerate(parts)
        ]

    def ids(self) -> list[int]:
        n = max(1, -(-len(self.refs) // REFS_PER_ROW))
        return [stable_id(self.source, self.gen, p) for p in range(n)]


def versions_from_rows(rows: list[dict]) -> list[DocVersion]:
    """Document versions from their rows (a long document's references span several rows)."""
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in rows:
        grouped[(r["source"], int(r["gen"]))].append(r)
    out = []
    for (source, gen), parts in grouped.items():
        parts.sort(key=lambda r: int(r["part"]))
        head = parts[0]
        if int(head["part"]) != 0 or len(parts) != int(head["parts"]):
            raise IndexCorrupt(f"Milvus 中文档 {source} 第 {gen} 代的记录不完整（{len(parts)}/{head['parts']} 行）")
        try:
            info = DocumentInfo(**json.loads(head["info"])) if head["info"] else None
            refs = [ref for r in parts for ref in unpack_refs(r["refs"])]
        except (ValueError, TypeError) as exc:
            raise IndexCorrupt(f"Milvus 中文档 {source} 的记录已损坏：{exc}") from exc
        out.append(DocVersion(source, gen, int(head["seq"]), bool(head["removed"]), info, refs))
    return out


def newest(versions: list[DocVersion], generation: int) -> dict[str, DocVersion]:
    """Per source, the version a reader of `generation` sees; removed documents left out; in document order."""
    best: dict[str, DocVersion] = {}
    for v in versions:
        if v.gen <= generation and (v.source not in best or v.gen > best[v.source].gen):
            best[v.source] = v
    live = [v for v in best.values() if not v.removed]
    live.sort(key=lambda v: v.seq)
    return {v.source: v for v in live}


class State:
    """What one committed generation holds, derived from its document versions; read-only."""

    def __init__(self, commit: Commit, docs: dict[str, DocVersion], df):
        self.commit = commit
        self.df = df  # vocab.DfTable of this generation
        self.generation = commit.generation
        self.docs = docs
        self.documents = [v.info for v in docs.values() if v.info is not None]
        sources: dict[int, list[str]] = {}
        chunks: dict[int, int] = {}
        for v in docs.values():
            for article, n in v.refs:
                if article not in sources:
                    sources[article] = []
                    chunks[article] = n
                sources[article].append(v.source)
        self.article_sources = {a: tuple(s) for a, s in sources.items()}
        self.article_chunks = chunks
        self.n_articles = len(chunks)
        self.n_chunks = int(sum(chunks.values()))
        self.loaded = time.monotonic()

    def live(self, article: int) -> bool:
        return article in self.article_sources
