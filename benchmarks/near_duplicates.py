"""The near-duplicate index at build scale: python -m benchmarks.near_duplicates [--articles N].

A full rebuild signs every article (MinHash, `near_duplicates.signature`) and, in one transaction,
looks each one up and records it (`NearDuplicates.find` + `record`). This times both on generated
news articles (benchmarks.corpus), recording into a fresh index twice in the same run: with the
page cache the index opens with (`CACHE_KIB`) and with SQLite's default 2 MB, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.near_duplicates")
    parser.add_argument("--articles", type=int, default=100_000)
    args = parser.parse_args(argv)

    from rag import near_duplicates as nd

    from .corpus import generate

    work = Path(tempfile.mkdtemp(prefix="rag-near-dup-"))
    generate(work / "docs", int(args.articles * 1.35))  # about 0.75 articles a chunk
    bodies = [line for page in sorted((work / "docs").iterdir()) for line in page.read_text(encoding="utf-8").splitlines()
              if len(line) > 50][: args.articles]
    started = time.perf_counter()
    sigs = [nd.signature(b) for b in bodies]
    result = {"articles": len(bodies), "sign_s": round(time.perf_counter() - started, 1)}
    seconds = []
    for label, cache_kib in (("configured", nd.CACHE_KIB), ("sqlite default", 2000)):
        index = nd.NearDuplicates(work / f"{label}.sqlite")
        index.db.execute(f"PRAGMA cache_size = -{cache_kib}")
        started = time.perf_counter()
        for i, sig in enumerate(sigs):
            if sig is not None:
                index.find(sig, {"page": "sha"})
            index.record(i + 1, sig, f"page-{i // 50}", "sha")
        index.commit()
        seconds.append(time.perf_counter() - started)
        result[f"find_record_s ({label}, {cache_kib / 1024:.0f} MB)"] = round(seconds[-1], 2)
        index.close()
    result["ratio configured / default"] = round(seconds[0] / seconds[1], 2)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
