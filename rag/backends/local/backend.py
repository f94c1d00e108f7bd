"""The local backend: segments of BM25 arrays, FAISS vectors and SQLite text in one folder.

Every commit is a generation: a manifest naming its segments and its documents (and through
them, which articles are live). Readers pin a generation for a whole request and move to a newer
one between requests, by themselves; a generation's files are deleted only when no reader holds
it (see folder.py). Adds write one small segment; removes write only a new manifest; small
segments are merged in the background (`maintain`), as Lucene does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from ...settings import Settings
from ..base import Backend, IndexCorrupt, IndexLocked
from . import folder as fs
from . import segment
from .generation import Generation
from .manifest import GenerationManifest, load
from .snapshot import LocalSnapshot
from .writer import LocalWriter, collect_garbage

log = logging.getLogger(__name__)


class LocalBackend(Backend):
    defers_vectors = True

    def __init__(self, folder: Path, field_weights: dict[str, float] | None = None, hard_max: int = 600,
                 workers: int = 1, progress: bool = False, settings: Settings | None = None):
        self.settings = settings or Settings()  # segments' tuning: ann, verify_sync_mb, parallel_min_articles
        self.folder = Path(folder)
        self.field_weights = field_weights or {"words": 1.0, "bigrams": 0.5, "articles": 0.5}
        self.hard_max = hard_max
        self.workers = workers
        self.progress = progress
        self._lock = threading.RLock()
        self._segments: dict[str, segment.Segment] = {}
        self._gen: Generation | None = None
        self._reloader: threading.Thread | None = None
        self._failed_stamp: tuple[int, int] | None = None
        self._closed = False
        self.reload_error = ""  # why the newest generation could not be opened (the previous one serves)

    @property
    def location(self) -> str:
        return str(self.folder)

    @property
    def exists(self) -> bool:
        return fs.read_pointer(self.folder) is not None

    # --- reading -------------------------------------------------------------------------------

    def _open_generation(self) -> Generation:
        """Lease the generation CURRENT names, then check it is still current (see folder.py)."""
        for _ in range(20):
            stamp = fs.pointer_stamp(self.folder)
            number = fs.read_pointer(self.folder)
            if number is None:
                raise IndexCorrupt(f"{self.folder} 中没有索引（缺少 CURRENT）；请先运行 python -m rag build")
            lease = fs.Lease(self.folder, number)
            if fs.read_pointer(self.folder) != number:
                lease.release()
                continue
            try:
                manifest = load(GenerationManifest, self.folder / fs.GENERATIONS / f"{number:08d}.json")
                with self._lock:
                    for seg_id in manifest.segments:
                        if seg_id not in self._segments:
                            self._segments[seg_id] = segment.Segment(self.folder / fs.SEGMENTS / seg_id,
                                                                     settings=self.settings)
                    return Generation(manifest, self._segments, lease, stamp)
            except BaseException:
                lease.release()
                raise
        raise IndexCorrupt(f"{self.folder} 的 CURRENT 一直在变化，无法打开索引")

    def _install(self, gen: Generation) -> None:
        with self._lock:
            old, self._gen = self._gen, gen
            if old is not None:
                old.retired = True
                if old.refs == 0:
                    self._close_generation(old)

    def _close_generation(self, gen: Generation) -> None:
        gen.lease.release()
        current = set(self._gen.manifest.segments) if self._gen is not None else set()
        for seg in gen.segments:
            if seg.id not in current and seg.id in self._segments:
                self._segments.pop(seg.id).close()

    def refresh(self, wait: bool = False) -> bool:
        """Open the newest generation if CURRENT moved; in the background unless `wait`."""
        with self._lock:
            running = self._reloader
        if running is not None:
            if not wait:
                return False
            running.join()  # a background reload is under way: let it finish, then look again
        with self._lock:
            if self._gen is not None and fs.pointer_stamp(self.folder) == self._gen.stamp:
                return running is not None
            if self._reloader is not None:
                return False
            if not wait:
                self._reloader = threading.Thread(target=self._reload, name="rag-refresh", daemon=True)
                self._reloader.start()
                return True
            self._reloader = threading.current_thread()
        return self._reload()

    def _reload(self) -> bool:
        try:
            gen = self._open_generation()
        except IndexCorrupt as exc:
            with self._lock:
                self._reloader = None
                if self._gen is None:
                    raise
                self.reload_error = str(exc)
                self._failed_stamp = fs.pointer_stamp(self.folder)  # not retried until CURRENT moves again
            log.error("新一代索引无法打开，继续使用第 %d 代：%s", self._gen.number, exc)
            return False
        except BaseException:
            with self._lock:
                self._reloader = None
            raise
        self.reload_error = ""
        with self._lock:
            self._reloader = None
            if self._closed:  # closed while this was loading: hold nothing
                gen.lease.release()
                return False
            self._install(gen)
        log.info("已切换到第 %d 代索引", gen.number)
        return True

    @contextlib.contextmanager
    def snapshot(self):
        with self._lock:
            self._closed = False  # a closed backend opens again on use
            if self._gen is None:
                self._install(self._open_generation())
            elif self._reloader is None and fs.pointer_stamp(self.folder) not in (self._gen.stamp, self._failed_stamp):
                self.refresh(wait=False)
            gen = self._gen
            gen.refs += 1
        try:
            yield LocalSnapshot(gen, self.field_weights)
        finally:
            with self._lock:
                gen.refs -= 1
                if gen.retired and gen.refs == 0:
                    self._close_generation(gen)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._gen is not None:
                self._gen.retired = True
                if self._gen.refs == 0:
                    gen, self._gen = self._gen, None
                    gen.lease.release()
            for seg in self._segments.values():
                seg.close()
            self._segments.clear()

    # --- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, timeout: float = 0.0, on_wait=None):
        lock = fs.WriterLock(self.folder)
        lock.acquire(timeout, on_wait)
        try:
            writer = LocalWriter(self)
            yield writer
        finally:
            lock.release()

    def build_graph(self, part):
        # Outside the writer lock, so not a `.tmp` name (a commit meanwhile deletes those); one left by a
        # process that died is deleted here.
        for old in self.folder.glob(".graph-*"):
            pid = old.name.split("-")[1]
            if not (pid.isdigit() and _alive(int(pid))):
                old.unlink(missing_ok=True)
        path = self.folder / f".graph-{os.getpid()}-{threading.get_ident()}-{part}"
        try:
            segment.build_graph(self.segment(part), path, self.settings)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def segment(self, seg_id: str) -> segment.Segment:
        with self._lock:
            if seg_id not in self._segments:
                self._segments[seg_id] = segment.Segment(self.folder / fs.SEGMENTS / seg_id, settings=self.settings)
            return self._segments[seg_id]

    def maintain(self) -> None:
        """Merge segments by the tiered policy, one generation per merge; safe to call any time."""
        with self.writer(timeout=0.0) as w:
            while w.merge_once():
                pass

    def collect(self) -> None:
        """Delete what no reader holds any more, if no writer is busy (a writer does it anyway)."""
        lock = fs.WriterLock(self.folder)
        try:
            lock.acquire(timeout=0.0)
        except IndexLocked:
            return
        try:
            collect_garbage(self.folder, keep_number=fs.read_pointer(self.folder))
        finally:
            lock.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
