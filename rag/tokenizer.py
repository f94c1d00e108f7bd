"""Chinese tokenizer for the lexical leg: jieba search mode, a user dictionary of local names, stopwords.

The same instance tokenizes documents and queries, so both sides always agree. The bulk search-mode
cut runs on rjieba (jieba-rs, about 20x faster than jieba, see README); jieba stays for what rjieba
has no equivalent of: part-of-speech tags with the user dictionary's tags, and its frequency table.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import os
import re
import threading
from enum import Enum
from pathlib import Path

DATA = Path(__file__).parent / "data"
_WORD = re.compile(r"\w", re.UNICODE)
# rjieba keeps ASCII runs joined by these as one word (jean-pierre, 6-2, t-92, u.s); jieba splits them, and
# queries are split by jieba (`weighted`). Spacing them first makes rjieba's tokens jieba's on every eval set.
_ASCII_JOINER = re.compile(r"(?<=[a-z0-9])[-+#&_]+(?=[a-z0-9])|(?<=[a-z])\.(?=[a-z])")
# `cut_many` joins texts with this line break: the engines cut text in blocks split at every non-word character,
# each whitespace character a token of its own, so the joined text cuts into each text's tokens with a "\n"
# between them. A text holding a line break or a carriage return (\r\n is one token) is cut alone.
_JOIN = "\n"
KEPT_MAX = 1 << 20  # tokens whose filtering outcome is remembered (about 150 MB when full)


def _read_words(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


class Engine(str, Enum):
    """What cuts text in search mode (documents and queries): the two must never be mixed in one index."""

    JIEBA = "jieba"
    RJIEBA = "rjieba"


class Tokenizer:
    """Thread-safe wrapper over a private `jieba.Tokenizer` (the global one is shared process state)
    and, for the search-mode cut, a private `rjieba.Jieba` with the same user dictionary."""

    def __init__(self, userdict: Path = DATA / "userdict.txt", stopwords: Path = DATA / "stopwords.txt",
                 engine: Engine = Engine.RJIEBA):
        self.userdict = Path(userdict)
        self.stopwords = frozenset(_read_words(Path(stopwords)))
        self._stopwords_path = Path(stopwords)
        self.engine = Engine(engine)
        self._lock = threading.Lock()
        self._tk = None
        self._rj = None
        self._pos = None
        self._kept: dict[str, str] = {}  # a cut token -> the token kept ("" when dropped)

    @property
    def _jieba(self):
        if self._tk is None:
            with self._lock:
                if self._tk is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tk = jieba.Tokenizer()
                    tk.initialize()
                    tk.load_userdict(str(self.userdict))
                    self._tk = tk
        return self._tk

    @property
    def _rjieba(self):
        if self._rj is None:
            with self._lock:
                if self._rj is None:
                    import rjieba

                    rj = rjieba.Jieba()
                    # With its frequency and tag, as jieba's load_userdict does: the word alone cuts 0.3 % of tokens differently.
                    for line in self.userdict.read_text(encoding="utf-8").splitlines():
                        parts = line.split()
                        if not parts or parts[0].startswith("#"):
                            continue
                        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                        tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
                        rj.add_word(parts[0], freq, tag)
                    self._rj = rj
        return self._rj

    @property
    def version(self) -> str:
        """Changes whenever the engine, the dictionary or the stopword list does; stored in the manifest."""
        h = hashlib.sha256()
        if self.engine != Engine.JIEBA:  # indexes built before the engine was recorded were jieba's
            h.update(self.engine.value.encode())
        for path in (self.userdict, self._stopwords_path):
            h.update(path.read_bytes())
        return h.hexdigest()[:16]

    @property
    def parallel(self) -> bool:
        """Whether worker processes pay: for jieba, yes; rjieba cuts faster than the parent can take the
        tokens back from workers (6,000 articles: 2.8 M chars/s in one process, 2.3 with two)."""
        return self.engine == Engine.JIEBA

    def warm(self) -> None:
        _ = self._jieba
        if self.engine == Engine.RJIEBA:
            _ = self._rjieba

    def _cut_for_search(self, text: str):
        if self.engine == Engine.RJIEBA:
            return self._rjieba.cut_for_search(_ASCII_JOINER.sub(" ", text))
        return self._jieba.cut_for_search(text)

    def __call__(self, text: str) -> list[str]:
        return self._keep(self._cut_for_search(text.lower()))

    def cut_many(self, texts: list[str]) -> list[list[str]]:
        """`[self(t) for t in texts]` in one call of the engine: a call costs about a quarter of what cutting a
        sentence does (15,000 articles' titles and sentences: 3.39 s one by one, 2.50 s joined)."""
        if len(texts) < 2 or any(_JOIN in t or "\r" in t for t in texts):
            return [self(t) for t in texts]
        cut = self._cut_for_search(_JOIN.join(texts).lower())
        out: list[list[str]] = [[]]
        for token in cut:
            if token == _JOIN:
                out.append([])
            else:
                out[-1].append(token)
        if len(out) != len(texts):  # never seen; the texts alone are always right
            return [self(t) for t in texts]
        return [self._keep(tokens) for tokens in out]

    def _keep(self, cut) -> list[str]:
        """The cut's tokens stripped, without stopwords and tokens with no word character. The outcome of
        each distinct token is remembered: a cut repeats most of its tokens, and a lookup is cheaper."""
        kept = self._kept
        if len(kept) > KEPT_MAX:
            kept.clear()
        out = []
        for token in cut:
            keep = kept.get(token)
            if keep is None:
                stripped = token.strip()
                keep = kept[token] = stripped if stripped and _WORD.search(stripped) and stripped not in self.stopwords else ""
            if keep:
                out.append(keep)
        return out

    def _pos_tokenizer(self):
        # One instance only: jieba hands the user dictionary's tags to the first POSTokenizer and then forgets them.
        if self._pos is None:
            tk = self._jieba
            with self._lock:
                if self._pos is None:
                    import jieba.posseg

                    self._pos = jieba.posseg.POSTokenizer(tk)
        return self._pos

    def weighted(self, text: str, alpha: float = 0.5) -> dict[str, float]:
        """Query tokens with weights: the search-mode pieces of one word share that word's weight.

        cut_for_search turns 家门口 into 家门, 门口, 家门口; unweighted, a single compound word would
        outvote the rest of the question. Each piece gets 1/len(pieces)**alpha; alpha 0.5 lifted dev
        hit@1 from 0.857 to 0.905 and left CMRC and the extra questions level or better.

        This stays on jieba whatever the engine: it needs jieba's frequency table, and a query is short.
        """
        out: dict[str, float] = {}
        tk = self._jieba
        for word in tk.cut(text.lower()):
            pieces = []
            if len(word) > 2:
                pieces += [word[i : i + 2] for i in range(len(word) - 1) if tk.FREQ.get(word[i : i + 2])]
            if len(word) > 3:
                pieces += [word[i : i + 3] for i in range(len(word) - 2) if tk.FREQ.get(word[i : i + 3])]
            pieces.append(word)
            pieces = [p.strip() for p in pieces if p.strip() and _WORD.search(p) and p.strip() not in self.stopwords]
            for p in pieces:
                out[p] = out.get(p, 0.0) + 1.0 / len(pieces) ** alpha
        return out

    def frequency(self, word: str) -> int:
        """jieba's corpus frequency of `word` (0 when unknown)."""
        return self._jieba.FREQ.get(word, 0) or 0

    def tagged(self, text: str) -> list[tuple[str, str]]:
        """(word, part-of-speech) pairs (jieba posseg with the user dictionary's tags)."""
        return [(w.word, w.flag) for w in self._pos_tokenizer().lcut(text)]

    def places(self, text: str) -> list[str]:
        """Places and organisations (jieba POS ns / nt; the user dictionary tags the local ones)."""
        return [w for w, flag in self.tagged(text) if flag in ("ns", "nt") and len(w) > 1]

    def names(self, text: str) -> list[str]:
        """Person names (jieba POS nr) of two or more characters: the answers to 谁 / who."""
        return [w for w, flag in self.tagged(text) if flag == "nr" and len(w) > 1]

    def nouns(self, text: str) -> list[str]:
        """Nouns and names (the subject of a question), for carrying a conversation's topic forward."""
        pos = self._pos_tokenizer()
        return [
            w.word
            for w in pos.lcut(text)
            if w.flag[:1] in ("n", "j") and w.word not in self.stopwords and len(w.word) > 1
        ]


def tokenize_articles(items, workers: int = 1):
    """(title, [sentences]) -> (title tokens, [sentence tokens]), in order, on `workers` processes.

    Workers are forked after the parent has loaded jieba, so each starts warm.
    """
    items = iter(items)
    if workers <= 1 or not default_tokenizer().parallel:
        yield from map(_tokenize_article, items)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from . import forked

    default_tokenizer().warm()
    ctx = mp.get_context("fork") if forked.available() else None
    gc.freeze()  # forked workers then never write to (and so never copy) the parent's objects
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=forked.die_with_parent, initargs=(os.getpid(),)) as pool:
            # Executor.map takes its whole input at once; feeding it windows bounds the text in flight.
            while window := list(itertools.islice(items, 16384)):
                yield from pool.map(_tokenize_article, window, chunksize=256)
    finally:
        gc.unfreeze()


def _tokenize_article(item):
    tk = default_tokenizer()
    title, sentences = item
    tokens = tk.cut_many([title, *sentences])
    return tokens[0], tokens[1:]


_default: Tokenizer | None = None
_default_lock = threading.Lock()


def default_tokenizer() -> Tokenizer:
    global _default
    with _default_lock:
        if _default is None:
            _default = Tokenizer()
        return _default


_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def char_bigrams(text: str) -> list[str]:
    """Overlapping CJK character bigrams; a lone CJK character stands for itself."""
    out = []
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out
