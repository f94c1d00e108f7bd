"""The tiered merge policy: which segments to merge next (as Lucene does)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from .manifest import GenerationManifest

if TYPE_CHECKING:
    from .backend import LocalBackend

# A tier holds segments of similar size (powers of MERGE_FACTOR chunks); MERGE_FACTOR segments in
# one tier are merged into one. Segments with more than EXPUNGE of their articles dead are rewritten.
MERGE_FACTOR = 4
EXPUNGE = 0.3


def live_articles(manifest: GenerationManifest, backend: LocalBackend) -> dict[str, np.ndarray]:
    live = {s: np.zeros(backend.segment(s).n_articles, dtype=bool) for s in manifest.segments}
    for doc in manifest.documents:
        for seg_id, a0, a1 in doc.refs:
            live[seg_id][a0:a1] = True
    return live


def plan_merge(segments: list[tuple[str, int, int, int]]) -> list[str]:
    """Segments to merge next, from (id, articles, live articles, chunks): a full tier, else one
    segment with too many dead articles; [] when nothing needs doing."""
    tiers = defaultdict(list)
    for seg_id, _, _, n_chunks in segments:
        tiers[int(math.log(max(n_chunks, 1), MERGE_FACTOR))].append(seg_id)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= MERGE_FACTOR:
            return tiers[tier][:MERGE_FACTOR]
    for seg_id, n_articles, n_live, _ in segments:
        if n_articles and n_live < (1 - EXPUNGE) * n_articles:
            return [seg_id]
    return []
