"""What one search hands to every later stage: passages plus the facts about them, from one snapshot.

`Index.search` fills a `Retrieval` inside a single pinned snapshot, so the answer, the answerability
decision and the view never read the library again (and never see two versions of it). Stages after
retrieval (sentence choice, answerability, a reranker or a generator) are pure functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .results import Passages


@dataclass(frozen=True)
class Retrieval:
    query: str  # what was searched (a follow-up carries its topic)
    passages: Passages
    terms: dict[str, float]  # the query's tokens with their query weights (Tokenizer.weighted)
    # idf over chunks of every query token the corpus knows; a token missing here is unseen in the archive
    weights: dict[str, float]
    rare_weight: float  # the weight an unseen token counts with (the rarest possible)
    # cosine of the query with each sentence of the top passages (stripped text); empty without the dense leg
    similarity: dict[str, float] = field(default_factory=dict)
    bodies: dict[int, str] = field(default_factory=dict)  # article id -> body, for the passages' articles
    n_chunks: int = 0  # live chunks in the snapshot: what `weights` were counted over

    @property
    def dense(self) -> bool:
        """The dense leg ran for this search (its similarities and top score mean something)."""
        return self.passages.mode != "lexical" and self.passages.dense_top is not None
