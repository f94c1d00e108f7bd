"""Operating the index for real: rebuilds under load, concurrent writers, kill -9 anywhere, hostile files.

Each test here reproduces a failure an operator or an attacker found on an earlier version.
Writers run as real subprocesses (`python -m rag ...`), as they would in production.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rag import ask, build_index, load_index, open_index
from rag.settings import Settings

from .conftest import ROOT

QUESTION = "许寨社区有多少名党员？"
EXTRA = "\n周口新建天文馆{n}\n本报讯（记者 宋风）周口天文馆第{n}期今日开馆，馆内有球幕影院，可容纳{n}百名观众。\n"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_MODEL": "none", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _rag(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rag", "-q", *map(str, args)], cwd=ROOT, env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _session(sid: int) -> list[int]:
    """Live processes of session `sid` (the build and any worker it forked)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _leftovers(index: Path) -> list[str]:
    return sorted(
        str(p.relative_to(index))
        for p in index.rglob("*")
        if p.name.startswith(".") and (p.name.endswith(".tmp") or p.parent.name == "generations")
    ) + sorted(p.name for p in (index / "leases").glob("*"))


# --- readers pinned to generations ---------------------------------------------------------------


def test_readers_keep_answering_through_rebuilds_and_see_each_change(tmp_path, seeds_copy):
    settings = Settings(docs_dir=seeds_copy, index_dir=tmp_path / "index", model="none")
    index = open_index(settings, progress=False)
    stop, failures, answered = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            try:
                passages = index.retrieve(QUESTION, k=3)
                assert passages and passages[0].source == "000_511f53cd465d0282.txt"
                answered[0] += 1
            except Exception as exc:  # any failure is what this test is about
                failures.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    page = seeds_copy / "004_12cb73f56a8ba074.txt"
    try:
        for n in range(1, 4):
            with open(page, "a", encoding="utf-8") as f:
                f.write(EXTRA.format(n=n))
            if n == 2:
                index.sync()  # the app itself picks up a docs change
            else:
                proc = _rag("build", "--docs", seeds_copy, "--index", tmp_path / "index")  # another process rebuilds
                assert proc.wait(timeout=300) == 0, proc.stderr.read()
            deadline = time.monotonic() + 30
            while f"天文馆{n}" not in index.retrieve(f"天文馆第{n}期", k=1)[0].title:
                assert time.monotonic() < deadline, "the running index never moved to the new generation"
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [], failures[:5]
    assert answered[0] > 20
    # Old generations went away once no reader held them; only what the live index uses remains.
    index.refresh()
    build_index(seeds_copy, tmp_path / "index", model="none", progress=False).close()
    index.refresh()
    assert len(list((tmp_path / "index" / "generations").glob("*.json"))) <= 2


# --- one writer at a time ------------------------------------------------------------------------


def test_concurrent_builds_are_serialised_and_all_succeed(tmp_path, seeds_dir):
    pairs = []
    rng = random.Random(3)
    for i in range(10):
        folder = tmp_path / f"index{i}"
        first = _rag("build", "--docs", seeds_dir, "--index", folder)
        time.sleep(rng.uniform(0, 0.8))
        pairs.append((folder, first, _rag("build", "--docs", seeds_dir, "--index", folder)))
        if i % 5 == 4:  # five pairs at a time: 2 cores
            for _, a, b in pairs[-5:]:
                for proc in (a, b):
                    out, err = proc.communicate(timeout=600)
                    assert proc.returncode == 0, err[-2000:]
                    assert "文档 5 篇" in out
    for folder, _, _ in pairs:
        assert _leftovers(folder) == [], (Path("/proc/locks").read_text(), list((folder / "leases").glob("*")))
        index = load_index(folder)
        assert index.retrieve(QUESTION)[0].source == "000_511f53cd465d0282.txt"
        index.close()


def test_a_second_writer_that_will_not_wait_is_told_who_holds_the_lock(tmp_path, seeds_dir):
    # The holder is a process that keeps the writer lock until told to let go: a real build of the
    # seeds without a model can finish before a second interpreter has even started (CI saw it).
    folder = tmp_path / "index"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom rag.backends.local.folder import WriterLock\n"
         f"lock = WriterLock({str(folder)!r}); lock.acquire()\nprint('held', flush=True)\n"
         "sys.stdin.readline(); lock.release()"],
        cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = _rag("build", "--docs", seeds_dir, "--index", folder, env=_env(RAG_LOCK_TIMEOUT="0"))
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2
        assert f"PID {holder.pid}" in err and "正由另一个进程" in err
        assert not (folder / "CURRENT").exists()  # the refused writer wrote nothing
    finally:
        holder.communicate("\n", timeout=60)
    build = _rag("build", "--docs", seeds_dir, "--index", folder, env=_env(RAG_LOCK_TIMEOUT="0"))
    out, err = build.communicate(timeout=300)
    assert build.returncode == 0, err[-2000:]
    assert load_index(folder).info().documents == 5


# --- kill -9 anywhere ----------------------------------------------------------------------------

# Runs the CLI with os.replace (segment rename, manifest write, CURRENT swap) or the cleanup after
# the swap made fatal at the named point: a SIGKILL exactly there, not somewhere near it.
CRASH_AT = """
import os, signal, sys
point = sys.argv[1]
real = os.replace
def replace(src, dst, *a, **k):
    if point in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
if point == "cleanup":
    import rag.backends.local.folder as fs
    fs.held_generations = lambda folder: os.kill(os.getpid(), signal.SIGKILL)
from rag.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


def test_kill_9_at_any_point_leaves_a_loadable_index_and_no_process(tmp_path, seeds_copy):
    folder = tmp_path / "index"
    build_index(seeds_copy, folder, model="none", progress=False).close()
    script = tmp_path / "crash_at.py"
    script.write_text(CRASH_AT)
    env = _env(RAG_PARALLEL_MIN_ARTICLES="10", RAG_WORKERS="2", RAG_DOCS_DIR=str(seeds_copy), RAG_INDEX_DIR=str(folder))
    rng = random.Random(11)
    forced = ["segments/", "generations/", "CURRENT", "cleanup"]
    tries = [(op, point) for point in forced for op in ("build", "add")] + [(op, None) for op in ("build", "add") * 6]
    for n, (op, point) in enumerate(tries):
        index = load_index(folder)
        before = set(index.sources())
        index.close()
        new = tmp_path / f"extra{n}.txt"
        new.write_text(EXTRA.format(n=n + 10), encoding="utf-8")
        args = ["build"] if op == "build" else ["add", new]
        if point is None:
            cmd = [sys.executable, "-m", "rag", "-q", *map(str, args)]
        else:
            cmd = [sys.executable, str(script), point, "-q", *map(str, args)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if point is None:
            time.sleep(rng.uniform(0.5, 5.0))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=300)
        deadline = time.monotonic() + 10
        while _session(proc.pid):
            assert time.monotonic() < deadline, f"try {n} ({op}, {point}): processes survived: {_session(proc.pid)}"
            time.sleep(0.1)
        index = load_index(folder)
        after = set(index.sources())
        allowed = [before] if op == "build" else [before, before | {new.name}]
        assert after in allowed, (n, op, point, after - before, before - after)
        assert index.retrieve(QUESTION)[0].source == "000_511f53cd465d0282.txt"
        if new.name in after:
            assert index.retrieve(f"天文馆第{n + 10}期", k=1)[0].source == new.name, "an add is visible whole"
        index.close()
    build_index(seeds_copy, folder, model="none", progress=False).close()  # the next writer cleans up
    assert _leftovers(folder) == [], (os.getpid(), Path("/proc/locks").read_text(), [(p.name, p.stat().st_ino) for p in (folder / "leases").glob("*")])


# --- bounded requests ----------------------------------------------------------------------------


def test_a_huge_question_does_not_hold_up_a_normal_one(lexical_index):
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        ask(QUESTION, index=lexical_index)
        timings.append(time.perf_counter() - t0)
    baseline = sorted(timings)[1]
    huge = "智慧岛核心区企业" * 7500  # 60,000 characters
    results = []
    threads = [threading.Thread(target=lambda: results.append(ask(huge, index=lexical_index))) for _ in range(4)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    normal = ask(QUESTION, index=lexical_index)
    elapsed = time.perf_counter() - t0
    for t in threads:
        t.join(timeout=60)
    assert normal.found and "81" in normal.text
    assert elapsed < baseline + 1.0, (elapsed, baseline)
    assert len(results) == 4 and all("问题过长" in r.notice for r in results)


# --- hostile files in the docs folder ------------------------------------------------------------


def test_links_out_of_the_folder_and_loops_are_skipped_and_utf16_is_read(tmp_path, caplog):
    outside = tmp_path / "secret.txt"
    outside.write_text("机密文件\n本报讯（记者 甲）机密口令是青龙白虎。\n", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.txt").write_text("周口港\n本报讯（记者 王晨）周口港今年吞吐量创新高。\n", encoding="utf-8")
    text = "沙颍河大桥\n本报讯（记者 宋风）沙颍河大桥今日通车，全长一千二百米。\n"
    (docs / "utf16le.txt").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (docs / "utf16be.txt").write_bytes(b"\xfe\xff" + text.replace("沙颍河", "颍河").encode("utf-16-be"))
    (docs / "link_out.txt").symlink_to(outside)
    (docs / "loop_a.txt").symlink_to(docs / "loop_b.txt")
    (docs / "loop_b.txt").symlink_to(docs / "loop_a.txt")
    (docs / "again").symlink_to(docs, target_is_directory=True)
    with caplog.at_level("WARNING"):
        index = build_index(docs, tmp_path / "index", model="none", progress=False)
    assert set(index.sources()) == {"page.txt", "utf16le.txt", "utf16be.txt"}
    assert "link_out.txt" in caplog.text and "文档目录之外" in caplog.text
    assert "loop_a.txt" in caplog.text and "循环" in caplog.text
    assert "again" in caplog.text
    assert index.retrieve("沙颍河大桥全长多少？", k=1)[0].source == "utf16le.txt"
    assert all(p.source != "link_out.txt" and "青龙" not in p.text for p in index.retrieve("机密口令", k=5))
