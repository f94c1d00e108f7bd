"""A share of a build run on the second core by a forked child process.

Forked, not spawned: the child inherits the parent's memory (chunks, article bodies), so nothing is
pickled going in; what it sends back through a pipe is all that crosses. Used by the segment build
(the bigrams field) and the near-duplicate check (MinHash signatures); jieba's tokenizer workers use
`die_with_parent` too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator


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
