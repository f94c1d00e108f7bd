"""BM25's parameters and idf, in one place: ln(1 + (N - df + 0.5) / (df + 0.5)), N and df over live documents.

`idf` is the scalar form (query weights for answers and coverage, Milvus's sparse query vector);
`idf_array` the numpy form the local backend scores with. They are the same formula, each written
exactly as its callers always computed it (`math.log(1 + x)` and `np.log1p(x)` can differ in the
last bit, and the scalar weights are compared in float64).
"""

from __future__ import annotations

import math

import numpy as np

# Lucene's (and bm25s') defaults; both backends score with them.
K1, B = 1.5, 0.75


def idf(df: float, n: int) -> float:
    """The idf of a term found in `df` of `n` documents."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def idf_array(df, n):
    """`idf` for numpy document frequencies (an array or a scalar)."""
    return np.log1p((n - df + 0.5) / (df + 0.5))
