"""MilvusBackend: the library in Milvus Lite, a standalone server or a cluster, by one MilvusClient API."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

from ...settings import Settings
from ..base import Backend, IndexCorrupt
from . import lexical
from .connection import Target, connect, errors, parse, server_version
from .layout import KINDS, Layout, check, ensure, layout_of, shared_name
from .lock import WriterLease
from .state import GRACE_S, Commit, DocVersion, State, newest, versions_from_rows
from .vocab import DfTable

log = logging.getLogger(__name__)

RECHECK_S = 0.5  # a reader looks for a newer commit at most this often (one tiny query)
ROWS_PER_CALL = 256
QUERY_WINDOW = 16_384  # the most rows one Milvus query returns
_lite_users: dict[str, int] = {}  # Lite folders open in this process -> backends using them
_lite_lock = threading.Lock()


class MilvusBackend(Backend):
    def __init__(self, uri: str, settings: Settings | None = None, progress: bool = False):
        settings = settings or Settings()
        self.target: Target = parse(uri)
        self.settings = settings
        self.progress = progress
        self.field_weights = settings.lexical_weights()
        self.hard_max = settings.chunk_hard_max
        self.workers = settings.workers
        self._lock = threading.RLock()
        self._client = None
        self.version = ""
        self._api = (0, 0)
        self._state: State | None = None
        self._checked = 0.0
        self._layouts_ready: set[str] = set()
        self._sentences: dict[str, bool] = {}  # layout id -> has a sentences collection

    # --- connection -----------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    with _lite_lock:
                        opened = self.target.lite and _lite_users.get(self.target.address, 0) > 0
                        client = connect(self.target, opened, self.settings.milvus)
                        if self.target.lite:
                            _lite_users[self.target.address] = _lite_users.get(self.target.address, 0) + 1
                    try:
                        self.version, self._api = server_version(client, self.target.lite)
                        self._load_all(client)
                    except BaseException:
                        self._client = client
                        self.close()
                        raise
                    self._client = client
        return self._client

    def _load_all(self, client) -> None:
        """Load our collections into memory: Milvus Lite reopens a database with all of them released,
        and a server may have released them; a released collection refuses every query."""
        with errors(self.target, "加载集合"):
            for name in client.list_collections():
                if name.startswith(self.target.prefix + "_") and "NotLoad" in str(client.get_load_state(name).get("state")):
                    client.load_collection(name)

    def call(self, doing: str, fn, *args, **kwargs):
        with errors(self.target, doing):
            return fn(*args, **kwargs)

    @property
    def location(self) -> str:
        return self.target.uri

    # --- layouts --------------------------------------------------------------------------------

    def strategy(self) -> str | None:
        """The lexical strategy this server can run: the one asked for, or the measured default."""
        _ = self.client
        sparse, bm25 = self._api >= (2, 4), self._api >= (2, 5)
        wanted = self.target.lexical
        if wanted == "auto":
            wanted = lexical.DEFAULT
            if wanted != "sparse" and not bm25:
                wanted = "sparse"
            return wanted if sparse else None
        if (wanted == "sparse" and not sparse) or (wanted in ("tokens", "jieba") and not bm25):
            raise ValueError(f"Milvus {self.version}（{self.target.uri}）不支持 lexical={wanted}"
                             f"（sparse 需要 2.4 以上，tokens/jieba 需要 2.5 以上）")
        return wanted

    def make_layout(self, vector_key: str | None, dim: int | None) -> Layout:
        from ...tokenizer import default_tokenizer

        strategy = self.strategy()
        fields = ("words",) + tuple(n for n in ("bigrams", "articles") if self.field_weights.get(n, 0) > 0)
        analyzer = {}
        if strategy == "tokens":
            # Lite's "standard" splits on \W only; a server's standard tokenizer splits CJK into characters.
            analyzer = {"tokenizer": "standard"} if self.target.lite else {"tokenizer": "whitespace"}
        signature = {"tokenizer": default_tokenizer().version, "chunking": self.settings.chunking(), "vector_key": vector_key}
        return Layout.make(signature, dim, strategy, fields, analyzer, "FLAT" if self.target.lite else "HNSW")

    def layout_from(self, commit: Commit) -> Layout:
        return Layout.from_json(commit.layout)

    def layout_of(self, state: State) -> Layout:
        return self.layout_from(state.commit)

    def name(self, kind: str, layout: Layout | None) -> str:
        return shared_name(self.target.prefix, kind) if layout is None else layout.name(self.target.prefix, kind)

    def ensure_shared(self) -> None:
        for kind in ("commits", "documents") + (() if self.target.lite else ("lock",)):
            ensure(self.client, self.target, self.name(kind, None), kind)

    def ensure_layout(self, layout: Layout) -> None:
        if layout.id in self._layouts_ready:
            return
        for kind in KINDS:
            ensure(self.client, self.target, self.name(kind, layout), kind, layout)
        self._layouts_ready.add(layout.id)

    # --- rows -----------------------------------------------------------------------------------

    def upsert(self, kind: str, layout: Layout | None, rows: list[dict]) -> None:
        name = self.name(kind, layout)
        for i in range(0, len(rows), ROWS_PER_CALL):
            self.call(f"写入 {name}", self.client.upsert, name, rows[i : i + ROWS_PER_CALL])

    def delete(self, kind: str, layout: Layout | None, ids=None, filter: str | None = None) -> None:
        name = self.name(kind, layout)
        if ids is not None:
            ids = list(ids)
            for i in range(0, len(ids), lexical.IN_BATCH):
                self.call(f"删除 {name} 中的记录", self.client.delete, name, ids=ids[i : i + lexical.IN_BATCH])
        elif filter:
            self.call(f"删除 {name} 中的记录", self.client.delete, name, filter=filter)

    def seal(self, layout: Layout) -> None:
        """Flush what a writer stored into sealed, indexed segments: Milvus Lite searches growing
        segments by brute force (150 ms a query on the seeds instead of 25 ms). A server seals on its
        own and indexes growing segments; a manual flush there costs a second per collection."""
        if not self.target.lite:
            return
        for name in [self.name(kind, layout) for kind in ("chunks", "articles", "bodies")] + [self.name("documents", None)]:
            self.call(f"刷新 {name}", self.client.flush, name)

    def scan(self, name: str, flt: str, fields: list[str]) -> list[dict]:
        """Every row matching `flt`: one query when they fit in one result window, else page by page."""
        rows = self.call(f"读取 {name}", self.client.query, name, filter=flt, output_fields=fields, limit=QUERY_WINDOW)
        if len(rows) < QUERY_WINDOW:
            return rows

        def run():
            it = self.client.query_iterator(name, batch_size=4000, filter=flt, output_fields=fields)
            out = []
            try:
                while batch := it.next():
                    out += batch
            finally:
                it.close()
            return out

        return self.call(f"读取 {name}", run)

    def has_sentences(self, layout: Layout) -> bool:
        """Whether the layout has a sentences collection (layouts written before it have none); asked once."""
        if layout.id not in self._sentences:
            self._sentences[layout.id] = self.has(self.name("sentences", layout))
        return self._sentences[layout.id]

    def has(self, name: str) -> bool:
        return bool(self.call("读取集合列表", self.client.has_collection, name))

    def newest_generation(self) -> int | None:
        name = self.name("commits", None)
        if not self.has(name):
            return None
        rows = self.call("读取提交记录", self.client.query, name, filter="generation >= 0", output_fields=["generation"])
        return max((int(r["generation"]) for r in rows), default=None)

    def commit_rows(self) -> list[Commit]:
        name = self.name("commits", None)
        if not self.has(name):
            return []
        rows = self.call("读取提交记录", self.client.query, name, filter="generation >= 0",
                         output_fields=["generation", "created", "vector_key", "layout", "meta"])
        return sorted((Commit.from_row(r) for r in rows), key=lambda c: c.generation)

    def newest_commit(self) -> Commit | None:
        commits = self.commit_rows()
        return commits[-1] if commits else None

    def read_versions(self, upto: int | None = None) -> list[DocVersion]:
        name = self.name("documents", None)
        if not self.has(name):
            return []
        flt = "gen >= 0" if upto is None else f"gen <= {int(upto)}"
        return versions_from_rows(self.scan(name, flt, ["source", "gen", "part", "parts", "seq", "removed", "info", "refs"]))

    def read_df(self, commit: Commit | None, layout: Layout) -> DfTable:
        if commit is None:
            return DfTable.empty()
        rows = self.call("读取词频表", self.client.query, self.name("vocab", layout), filter=f"gen == {commit.generation}",
                         output_fields=["gen", "part", "parts", "data"])
        return DfTable.from_rows(rows, commit.generation)

    def write_df(self, layout: Layout, generation: int, table: DfTable) -> None:
        self.upsert("vocab", layout, table.rows(generation))

    def delete_df_after(self, layout: Layout | None, generation: int) -> None:
        if layout is not None and self.has(self.name("vocab", layout)):
            self.delete("vocab", layout, filter=f"gen > {int(generation)}")

    def fetch_articles(self, layout: Layout, ids: list[int]) -> dict[int, dict]:
        rows = self.call("读取文章", self.client.query, self.name("articles", layout),
                         filter=f"id in [{','.join(map(str, ids))}]", output_fields=["title", "byline", "body", "parts"])
        out = {int(r["id"]): dict(r) for r in rows}
        long = [a for a, r in out.items() if int(r["parts"]) > 1]
        if long:
            rest = self.call("读取文章", self.client.query, self.name("bodies", layout),
                             filter=f"article in [{','.join(map(str, long))}]", output_fields=["article", "part", "body"])
            for r in sorted(rest, key=lambda r: (int(r["article"]), int(r["part"]))):
                out[int(r["article"])]["body"] += r["body"]
        return out

    def fetch_chunks(self, layout: Layout, articles: list[int]) -> dict[int, list[dict]]:
        rows = self.scan(self.name("chunks", layout), f"article in [{','.join(map(str, articles))}]",
                         ["article", "start", "end", "text"])
        out: dict[int, list[dict]] = {}
        for r in rows:
            out.setdefault(int(r["article"]), []).append(r)
        return out

    # --- reading --------------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.newest_generation() is not None

    def _load(self, commit: Commit) -> State:
        layout = self.layout_from(commit)
        for kind in ("chunks", "articles", "bodies", "vocab"):
            check(self.client, self.target, self.name(kind, layout), layout if kind == "chunks" else None)
        docs = newest(self.read_versions(commit.generation), commit.generation)
        return State(commit, docs, self.read_df(commit, layout))

    def _current(self, force: bool = False) -> State:
        """The newest committed state, reloaded when a newer commit exists (checked every RECHECK_S)."""
        with self._lock:
            now = time.monotonic()
            if self._state is not None and not force and now - self._checked < RECHECK_S:
                return self._state
            generation = self.newest_generation()
            self._checked = now
            if generation is None:
                raise IndexCorrupt(f"Milvus（{self.target.uri}）中没有索引；请先运行 python -m rag build")
            if self._state is None or self._state.generation != generation:
                commit = next((c for c in self.commit_rows() if c.generation == generation), None)
                if commit is None:
                    raise IndexCorrupt(f"Milvus（{self.target.uri}）中第 {generation} 代提交记录不见了")
                self._state = self._load(commit)
                log.info("已切换到 Milvus 第 %d 代索引", generation)
            return self._state

    @contextlib.contextmanager
    def snapshot(self):
        from .snapshot import MilvusSnapshot

        yield MilvusSnapshot(self, self._current())

    def refresh(self, wait: bool = False) -> bool:
        before = self._state.generation if self._state is not None else None
        try:
            state = self._current(force=True)
        except IndexCorrupt:
            if before is None:
                return False
            raise
        return state.generation != before

    # --- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, timeout: float = 0.0, on_wait=None):
        from .writer import MilvusWriter

        _ = self.client  # connection problems surface before any waiting
        lease = WriterLease(self, self.target, Path(self.settings.index_dir))
        self.ensure_shared()
        lease.acquire(timeout, on_wait)
        try:
            yield MilvusWriter(self)
        finally:
            lease.release()

    def maintain(self) -> None:
        with self.writer(timeout=0.0) as w:
            w.collect()

    def collect(self) -> None:
        """Nothing to free here: rows are shared by all readers, and each writer collects after its
        commit what is past the grace period (`collect_after`)."""

    def collect_after(self, base: Commit | None, committed: dict[str, DocVersion]) -> None:
        """Housekeeping after a commit; everything here is older than the grace period and unreferenced."""
        if base is None:
            return
        now = time.time()
        commits = self.commit_rows()
        created = {c.generation: c.created for c in commits}
        retained = [c for c in commits if c.generation >= base.generation or c.created >= now - GRACE_S]
        oldest = min(c.generation for c in retained)
        old = [c.generation for c in commits if c.generation < oldest]
        if old:
            self.delete("commits", None, ids=old)
        layouts = {self.layout_from(c).id: self.layout_from(c) for c in retained}
        for layout in layouts.values():
            if self.has(self.name("vocab", layout)):
                self.delete("vocab", layout, filter=f"gen < {oldest}")
        # Superseded document versions, once the version superseding them is older than the grace period.
        by_source: dict[str, list[DocVersion]] = {}
        for v in self.read_versions(base.generation):
            by_source.setdefault(v.source, []).append(v)
        doomed = []
        for versions in by_source.values():
            versions.sort(key=lambda v: v.gen)
            for v, after in zip(versions, versions[1:]):
                if created.get(after.gen, 0.0) < now - GRACE_S:
                    doomed.append(v)
            last = versions[-1]
            if last.removed and created.get(last.gen, 0.0) < now - GRACE_S and all(v in doomed for v in versions[:-1]):
                doomed.append(last)
        if doomed:
            self.delete("documents", None, ids=[i for v in doomed for i in v.ids()])
        # Garbage articles: chunks, body parts and article rows.
        layout = self.layout_from(base)
        live = {a for v in committed.values() for a, _ in v.refs}
        rows = self.scan(self.name("garbage", layout), f"since < {now - GRACE_S}", ["article"])
        dead = sorted({int(r["article"]) for r in rows})
        gone = [a for a in dead if a not in live]
        for i in range(0, len(gone), lexical.IN_BATCH):
            batch = ",".join(map(str, gone[i : i + lexical.IN_BATCH]))
            self.delete("chunks", layout, filter=f"article in [{batch}]")
            self.delete("bodies", layout, filter=f"article in [{batch}]")
            if self.has(self.name("sentences", layout)):
                self.delete("sentences", layout, filter=f"article in [{batch}]")
            self.delete("articles", layout, filter=f"id in [{batch}]")
        if dead:
            self.delete("garbage", layout, ids=dead)
            log.info("已从 Milvus 删除 %d 篇不再被引用的文章", len(gone))
        # Layouts no retained commit uses (a rebuild for a new model or tokenizer left them behind).
        names = self.call("读取集合列表", self.client.list_collections)
        for name in names:
            lid = layout_of(self.target.prefix, name)
            if lid is not None and lid not in layouts:
                self.call(f"删除集合 {name}", self.client.drop_collection, name)
                self._layouts_ready.discard(lid)
                log.info("已删除不再使用的 Milvus 集合 %s", name)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._state = None
            self._layouts_ready.clear()
        if client is None:
            return
        try:
            client.close()
        except Exception:
            pass
        if self.target.lite:
            with _lite_lock:
                left = _lite_users.get(self.target.address, 1) - 1
                if left > 0:
                    _lite_users[self.target.address] = left
                    return
                _lite_users.pop(self.target.address, None)
            try:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.target.address)  # the folder is free for another process
            except Exception:
                pass
