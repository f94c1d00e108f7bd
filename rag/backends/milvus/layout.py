"""Collections: two shared by every generation, five per layout (one way of storing the library).

    {prefix}_commits              one row per committed generation (meta, layout, vector key)
    {prefix}_documents            document versions (see state.py)
    {prefix}_lock                 the writer's claim on a server (see lock.py)
    {prefix}_{layout}_chunks      chunk rows: text, span, article, headline; dense vector; lexical fields
    {prefix}_{layout}_articles    article rows: metadata, body (first BODY_PART characters); article field
    {prefix}_{layout}_bodies      the rest of long bodies, in parts
    {prefix}_{layout}_vocab       per generation, the table of document frequencies (see vocab.py)
    {prefix}_{layout}_garbage     articles no document lists any more, deleted after the grace period
    {prefix}_{layout}_sentences   per article, its sentences' spans and float16 vectors, packed (never searched)

A layout is named by a hash of everything that changes what its rows hold (vector space and
dimension, lexical strategy, tokenizer, chunking). A full rebuild for a new model or tokenizer
writes a new layout beside the old one, so readers keep answering from the old one until the commit;
the old collections are dropped once no retained commit uses them. Milvus before 2.5 wants a vector
field in every collection: the bookkeeping collections carry a 2-dimensional dummy `_v`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict, dataclass, field, replace

from ..base import IndexCorrupt
from .connection import Target, errors

log = logging.getLogger(__name__)

FORMAT = 1
BODY_PART = 16_000  # characters of body per row: at most 64,000 bytes of UTF-8, under VARCHAR(65535)
MAX_TEXT = 65_535  # bytes in one VARCHAR
KINDS = ("chunks", "articles", "bodies", "vocab", "garbage", "sentences")


@dataclass(frozen=True)
class Layout:
    id: str
    dim: int | None  # dense vectors, None without
    lexical: str | None  # "sparse", "tokens", "jieba"; None where the server has no sparse vectors
    fields: tuple[str, ...] = ("words",)  # lexical fields: words, and bigrams/articles when weighted
    analyzer: dict = field(default_factory=dict)  # for "tokens": how the server splits our tokens
    dense_index: str = "FLAT"
    avglen: dict = field(default_factory=dict)  # "sparse": mean field lengths the rows were weighted with

    @classmethod
    def make(cls, signature: dict, dim: int | None, lexical: str | None, fields: tuple[str, ...], analyzer: dict,
             dense_index: str) -> Layout:
        body = json.dumps({"format": FORMAT, **signature, "dim": dim, "lexical": lexical, "fields": fields,
                           "analyzer": analyzer, "dense_index": dense_index}, sort_keys=True)
        return cls(hashlib.sha256(body.encode()).hexdigest()[:8], dim, lexical, tuple(fields), analyzer, dense_index)

    def with_avglen(self, avglen: dict) -> Layout:
        return replace(self, avglen=dict(avglen))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        try:
            return cls(data["id"], data["dim"], data["lexical"], tuple(data["fields"]), data.get("analyzer") or {},
                       data.get("dense_index", "FLAT"), data.get("avglen") or {})
        except (KeyError, TypeError) as exc:
            raise IndexCorrupt(f"Milvus 提交记录中的存储布局无法识别：{exc}") from exc

    def name(self, prefix: str, kind: str) -> str:
        return f"{prefix}_{self.id}_{kind}"


def shared_name(prefix: str, kind: str) -> str:
    return f"{prefix}_{kind}"


def layout_of(prefix: str, collection: str) -> str | None:
    m = re.fullmatch(rf"{re.escape(prefix)}_([0-9a-f]{{8}})_({'|'.join(KINDS)})", collection)
    return m.group(1) if m else None


# --- schemas ---------------------------------------------------------------------------------------


def _dummy(schema, index) -> None:
    from pymilvus import DataType

    schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
    index.add_index("_v", index_type="FLAT", metric_type="L2")


def _text(schema, name: str, analyzer: dict | None) -> None:
    from pymilvus import DataType

    if analyzer is None:
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT)
    else:
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True, analyzer_params=analyzer)


def _lexical_field(schema, index, name: str, layout: Layout) -> None:
    """One lexical field: our BM25 weights as a sparse vector, or text the server's BM25 function indexes."""
    from pymilvus import DataType, Function, FunctionType

    if layout.lexical == "sparse":
        schema.add_field(name, DataType.SPARSE_FLOAT_VECTOR)
        index.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        return
    jieba = layout.lexical == "jieba" and name != "bigrams"  # bigrams are ours in every strategy
    _text(schema, f"{name}_text", {"tokenizer": "jieba"} if jieba else layout.analyzer)
    schema.add_field(name, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name=f"{name}_bm25", function_type=FunctionType.BM25,
                                 input_field_names=[f"{name}_text"], output_field_names=[name]))
    index.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")


def schema_for(client, kind: str, layout: Layout | None):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    index = client.prepare_index_params()
    if kind == "commits":
        schema.add_field("generation", DataType.INT64, is_primary=True)
        schema.add_field("created", DataType.DOUBLE)
        schema.add_field("vector_key", DataType.VARCHAR, max_length=4096)
        schema.add_field("layout", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("meta", DataType.VARCHAR, max_length=MAX_TEXT)
        _dummy(schema, index)
    elif kind == "documents":
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        for name in ("gen", "part", "parts", "seq"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("removed", DataType.BOOL)
        schema.add_field("info", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("refs", DataType.VARCHAR, max_length=MAX_TEXT)
        _dummy(schema, index)
    elif kind == "lock":
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("holder", DataType.VARCHAR, max_length=1024)
        schema.add_field("expires", DataType.DOUBLE)
        _dummy(schema, index)
    elif kind == "chunks":
        assert layout is not None, "chunks collections belong to a layout"
        schema.add_field("id", DataType.INT64, is_primary=True)
        for name in ("article", "start", "end", "page"):
            schema.add_field(name, DataType.INT64)
        for name in ("text", "title", "byline"):
            _text(schema, name, None)
        if layout.lexical:
            for name in ("words", "bigrams"):
                if name in layout.fields:
                    _lexical_field(schema, index, name, layout)
        if layout.dim:
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=layout.dim)
            if layout.dense_index == "HNSW":
                index.add_index("dense", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
            else:
                index.add_index("dense", index_type="FLAT", metric_type="IP")
        if not layout.lexical and not layout.dim:
            _dummy(schema, index)
    elif kind == "articles":
        assert layout is not None, "articles collections belong to a layout"
        schema.add_field("id", DataType.INT64, is_primary=True)
        for name in ("page", "position", "chunks", "parts"):
            schema.add_field(name, DataType.INT64)
        for name in ("title", "byline", "kicker", "body"):
            _text(schema, name, None)
        if layout.lexical and "articles" in layout.fields:
            _lexical_field(schema, index, "articles", layout)
        else:
            _dummy(schema, index)
    elif kind == "bodies":
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("article", DataType.INT64)
        schema.add_field("part", DataType.INT64)
        _text(schema, "body", None)
        _dummy(schema, index)
    elif kind == "vocab":
        schema.add_field("id", DataType.INT64, is_primary=True)
        for name in ("gen", "part", "parts"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("data", DataType.VARCHAR, max_length=MAX_TEXT)
        _dummy(schema, index)
    elif kind == "sentences":
        schema.add_field("id", DataType.INT64, is_primary=True)
        for name in ("article", "part", "parts"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("data", DataType.VARCHAR, max_length=MAX_TEXT)
        _dummy(schema, index)
    elif kind == "garbage":
        schema.add_field("article", DataType.INT64, is_primary=True)
        schema.add_field("since", DataType.DOUBLE)
        _dummy(schema, index)
    else:
        raise ValueError(kind)
    return schema, index


def ensure(client, target: Target, name: str, kind: str, layout: Layout | None = None) -> None:
    """Create a collection if it is missing; check the dense dimension of one that exists."""
    with errors(target, f"创建集合 {name}"):
        if client.has_collection(name):
            check(client, target, name, layout if kind == "chunks" else None)
            return
        schema, index = schema_for(client, kind, layout)
        client.create_collection(name, schema=schema, consistency_level="Strong")
        # Lite builds indexes lazily and cannot report index progress: do not wait for it there.
        client.create_index(name, index, sync=not target.lite)
        client.load_collection(name)
        log.info("已创建 Milvus 集合 %s", name)


def check(client, target: Target, name: str, layout: Layout | None) -> None:
    """A chunks collection whose vectors do not have the layout's dimension is corrupt, not usable."""
    with errors(target, f"读取集合 {name}"):
        if not client.has_collection(name):
            raise IndexCorrupt(f"Milvus（{target.uri}）中缺少集合 {name}；请运行 python -m rag build 重建")
        if layout is None or not layout.dim:
            return
        fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
    dense = fields.get("dense")
    dim = int((dense or {}).get("params", {}).get("dim", 0) or 0)
    if dim != layout.dim:
        raise IndexCorrupt(
            f"Milvus（{target.uri}）集合 {name} 的向量维度为 {dim or '无'}，而索引记录与模型为 {layout.dim} 维"
            f"（dimension mismatch）；请运行 python -m rag build 重建"
        )
