"""The bundled e5 run by torch: the same weights as the C engine, and the token states it keeps inside.

Why: on this 2-core AVX2 CPU torch's fp32 matrix products over the dequantised weights embed chunks
2.2x (busy machine) to 2.8x (idle) faster than the C engine's int8 x int4 kernels, the vectors agree with the C engine's to
a cosine of 0.9999 (tests/test_dense.py), so both fill one vector space; and torch runs on a GPU.
`states` gives each token's final hidden state and the characters it came from: what pooling a
sentence's vector from its chunk's pass ("late chunking") needs. `python -m benchmarks.late_chunking`
measured it against a sentence's own pass: it ranked the answer's sentence worse on every eval set
(README, The device), so the index keeps embedding sentences on their own.

Pooling is the C engine's: the mean of every token's state, <s> and </s> included; a text longer than
the model's 512 positions is cut into windows of 510 tokens, each run on its own, and the window
means are averaged, weighted by their token counts.
"""

from __future__ import annotations

import numpy as np

from .e5_file import ModelFile


class TorchE5:
    def __init__(self, model: ModelFile, device: str = "cpu", fp16: bool = False):
        import torch

        self.torch = torch
        self.model = model
        self.device = device
        self.dtype = torch.float16 if fp16 else torch.float32
        c = model.config
        self.window = c.max_positions - 2

        def t(name: str, *shape: int):
            return torch.from_numpy(model.tensor(name, shape)).to(device=device, dtype=self.dtype)

        self.position = t("emb.pos", c.max_positions, c.hidden)
        self.token_type = t("emb.type", c.type_vocab, c.hidden)[0]
        self.norm = (t("emb.ln.w", c.hidden), t("emb.ln.b", c.hidden))
        h, f = c.hidden, c.ffn
        self.layers = []
        for i in range(c.layers):
            p = f"l{i}."
            self.layers.append({
                "qkv": (torch.cat([t(p + "q.w", h, h), t(p + "k.w", h, h), t(p + "v.w", h, h)]),
                        torch.cat([t(p + "q.b", h), t(p + "k.b", h), t(p + "v.b", h)])),
                "out": (t(p + "ao.w", h, h), t(p + "ao.b", h)), "norm1": (t(p + "aln.w", h), t(p + "aln.b", h)),
                "up": (t(p + "fi.w", f, h), t(p + "fi.b", f)), "down": (t(p + "fo.w", h, f), t(p + "fo.b", h)),
                "norm2": (t(p + "oln.w", h), t(p + "oln.b", h)),
            })

    # --- the network ------------------------------------------------------------------------------

    def _forward(self, windows: list[list[int]]):
        """Final hidden states (B, T, H) of token windows (<s> and </s> included), and their mask."""
        torch, c = self.torch, self.model.config
        F = torch.nn.functional
        b, t = len(windows), max(map(len, windows))
        ids = np.full((b, t), self.model.pad, dtype=np.int64)
        mask = np.zeros((b, t), dtype=bool)
        for i, w in enumerate(windows):
            ids[i, : len(w)] = w
            mask[i, : len(w)] = True
        valid = torch.from_numpy(mask).to(self.device)
        x = torch.from_numpy(self.model.word_rows(ids)).to(device=self.device, dtype=self.dtype)
        x = F.layer_norm(x + self.position[:t] + self.token_type, (c.hidden,), *self.norm, eps=c.eps)
        blocked = torch.zeros((b, 1, 1, t), device=self.device, dtype=self.dtype)
        blocked.masked_fill_(~valid[:, None, None, :], float("-inf"))  # padding is never attended to
        heads, size = c.heads, c.hidden // c.heads
        for layer in self.layers:
            q, k, v = F.linear(x, *layer["qkv"]).view(b, t, 3, heads, size).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=blocked).transpose(1, 2).reshape(b, t, c.hidden)
            x = F.layer_norm(x + F.linear(ctx, *layer["out"]), (c.hidden,), *layer["norm1"], eps=c.eps)
            up = F.gelu(F.linear(x, *layer["up"]))
            x = F.layer_norm(x + F.linear(up, *layer["down"]), (c.hidden,), *layer["norm2"], eps=c.eps)
        return x.float(), valid

    # --- texts -> vectors --------------------------------------------------------------------------

    def embed(self, texts: list[str], query: bool, batch: int = 16) -> np.ndarray:
        """Mean-pooled, unnormalised vectors of `texts` (n, H)."""
        prefix = "query: " if query else "passage: "
        torch, model = self.torch, self.model
        windows = []  # (text, token ids with <s> and </s>)
        for i, text in enumerate(texts):
            ids = model.tokenizer.encode(prefix + text)[0]
            for start in range(0, max(len(ids), 1), self.window):
                windows.append((i, [model.bos, *ids[start : start + self.window], model.eos]))
        sums = np.zeros((len(texts), model.config.hidden), dtype=np.float64)
        weights = np.zeros(len(texts))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))  # similar lengths pad little
        with torch.inference_mode():
            for at in range(0, len(order), batch):
                group = [windows[w] for w in order[at : at + batch]]
                states, valid = self._forward([ids for _, ids in group])
                means = ((states * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)).cpu().numpy()
                for row, (i, ids) in enumerate(group):
                    content = max(len(ids) - 2, 1)  # the C engine weights a window by its content tokens
                    sums[i] += content * means[row]
                    weights[i] += content
        return (sums / np.maximum(weights, 1)[:, None]).astype(np.float32)

    def states(self, texts: list[str], batch: int = 16) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """Per passage: the final hidden state of each content token (T, H; <s>, </s> and the prefix's
        tokens left out) and the [start, end) of the text each came from. Only the first 510 tokens."""
        prefix = "passage: "
        encoded = []
        for text in texts:
            ids, where = self.model.tokenizer.encode(prefix + text)
            ids, where = ids[: self.window], where[: self.window]
            encoded.append((ids, [(a - len(prefix), b - len(prefix)) for a, b in where]))
        out: list[tuple[np.ndarray, list[tuple[int, int]]]] = []
        with self.torch.inference_mode():
            for at in range(0, len(encoded), batch):
                group = encoded[at : at + batch]
                states, _ = self._forward([[self.model.bos, *ids, self.model.eos] for ids, _ in group])
                for row, (ids, where) in enumerate(group):
                    keep = [i for i, (a, _) in enumerate(where) if a >= 0]  # past the prefix
                    out.append((states[row, 1 : len(ids) + 1].cpu().numpy()[keep], [where[i] for i in keep]))
        return out
