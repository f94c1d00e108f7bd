"""A share of a build run on the second core by a forked child process.

Forked, not spawned: the child inherits the parent's memory (chunks, article bodies), so nothing is
pickled going in; what it sends back through a pipe is all that crosses. Used by the segment build
(the bigrams field), the near-duplicate check (MinHash signatures) and the split of documents into
articles and chunks (`shared`); jieba's tokenizer workers use `die_with_parent` too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available() -> bool:
    return "fork" in mp.get_all_start_methods()


def die_with_parent(parent: int) -> None:
    """A worker whose parent is killed (kill -9) must not live on holding 100+ MB: ask the kernel to
    kill it with its parent (Linux), and check the parent did not die before that was set."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


class Forked:
    """`target(send, *args)` in a forked child; `messages()` yields what it sends, in order.
    The child must not log: a lock another thread held at the fork may never be released there."""

    def __init__(self, target: Callable, *args):
        ctx = mp.get_context("fork")
        self._receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_run, args=(target, send, os.getpid(), *args), daemon=True)
        self._process.start()
        send.close()

    def messages(self) -> Iterator:
        """Until the child closes its end: it finished, failed or was killed (see `exitcode`)."""
        try:
            while True:
                yield self._receive.recv()
        except EOFError:
            return

    def pending(self) -> list:
        """What the child has sent so far, without waiting for more."""
        out = []
        try:
            while self._receive.poll():
                out.append(self._receive.recv())
        except EOFError:
            pass
        return out

    @property
    def exitcode(self) -> int | None:
        self._process.join()
        return self._process.exitcode

    def stop(self) -> None:
        """Kill the child if it still runs (the parent failed, or stopped listening) and reap it."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._receive.close()


def _run(target: Callable, send, parent: int, *args) -> None:
    die_with_parent(parent)
    target(send, *args)


def shared(fn: Callable[[T], R], items: Sequence[T], costs: Sequence[int], slice_size: int = 8) -> Iterator[R]:
    """`fn` of each item, in order, on both cores: the items past half the total cost are computed by a
    forked child and sent back `slice_size` at a time, while this process computes those before them and
    takes in what the child sent after each one (the pipe holds 64 KB: the child would wait otherwise).
    If the child fails, this process computes what it did not send. `fn` runs in the child too: it must
    not log, and what it returns must pickle."""
    total, cut = sum(costs), len(items)
    done = 0
    for i, cost in enumerate(costs):
        if 2 * done >= total:
            cut = i
            break
        done += cost
    child = Forked(_map, fn, items[cut:], slice_size)
    received: list = []
    try:
        for item in items[:cut]:
            yield fn(item)
            for part in child.pending():
                received += part
        for part in child.messages():
            received += part
    finally:
        child.stop()
    yield from received
    for item in items[cut + len(received):]:
        yield fn(item)


def _map(send, fn: Callable, items: Sequence, slice_size: int) -> None:
    for start in range(0, len(items), slice_size):
        send.send([fn(item) for item in items[start : start + slice_size]])
