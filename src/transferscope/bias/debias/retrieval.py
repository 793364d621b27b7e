"""Hybrid retrieval over the record: BM25 (bm25s) + dense (MiniLM), reciprocal-rank fusion.

Both rankers score the whole corpus; the leakage guard's mask removes forbidden passages
*before* ranking, so a forbidden passage can neither be returned nor push an allowed one out.
Fusion: ``score(p) = sum_r 1 / (rrf_k + rank_r(p))`` over the rankers that rank ``p`` (BM25
ranks only passages sharing a term with the query), ``rrf_k = 60`` (Cormack et al.'s default).
The dense index (one unit vector per passage) is the expensive part: it is built once per
(corpus, encoder) and cached as an array under ``<cache root>/bias-retrieval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferscope.bias.debias.corpus import Passage
from transferscope.core.cache import Cache, content_key
from transferscope.core.errors import InputError
from transferscope.core.progress import step_progress

RRF_K = 60
ENCODE_CHUNK = 64  # passages per encoder call: the progress step and what Ctrl-C can lose
DENSE_MAX_TOKENS = 96  # a passage's head (date, symbols, agenda, outcome) fits in it


@dataclass(kw_only=True, frozen=True)
class Hit:
    passage: Passage
    score: float  # fused RRF score
    bm25_rank: int | None  # 1-based among allowed passages; None: no query term in it
    dense_rank: int


def rrf_fuse(rankings: Sequence[Sequence[int]], rrf_k: int = RRF_K) -> dict[int, float]:
    """Reciprocal-rank fusion of rankings (lists of document indices, best first)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return fused


def _tokens(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


class HybridRetriever:
    """Index a corpus once; ``search(query, k, allowed)`` returns the fused top-k hits."""

    def __init__(self, passages: Sequence[Passage], encoder: str = "minilm",
                 rrf_k: int = RRF_K, cache: Cache | None = None):
        import bm25s

        self.passages = list(passages)
        if not self.passages:
            raise InputError("retrieval corpus: 0 passages: expected at least one passage "
                             "(a record with drafts or resolution texts)")
        self.rrf_k = rrf_k
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenize([p.text for p in self.passages], stopwords="en",
                                       show_progress=False), show_progress=False)
        self._vocab = set(self.bm25.vocab_dict)
        from transferscope.core.embeddings import SentenceEncoder

        self.encoder = SentenceEncoder(encoder, max_length=DENSE_MAX_TOKENS)
        self.embeddings = self._dense_index(encoder, cache or Cache("bias-retrieval"))

    def _dense_index(self, encoder: str, cache: Cache) -> np.ndarray:
        texts = [p.text for p in self.passages]
        key = content_key("dense-index", encoder, DENSE_MAX_TOKENS, texts)
        cached = cache.load_array(key)
        if cached is not None and cached.shape[0] == len(texts):
            return cached
        parts_cache = Cache("bias-retrieval-parts", cache.root.parent.parent)  # beside `cache`
        chunks = []
        with step_progress("dense index (MiniLM)", len(texts)) as advance:
            for start in range(0, len(texts), ENCODE_CHUNK):
                chunk = texts[start:start + ENCODE_CHUNK]
                part_key = content_key("dense-part", encoder, DENSE_MAX_TOKENS, chunk)
                part = parts_cache.load_array(part_key)
                if part is None:  # resumable: finished chunks survive an interruption
                    part = self.encoder.encode(chunk)
                    parts_cache.save_array(part_key, part)
                chunks.append(part)
                advance(len(chunk))
        embeddings = np.concatenate(chunks).astype(np.float32)
        cache.save_array(key, embeddings)
        return embeddings

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The top-k allowed passages for ``query`` (fewer if fewer are allowed)."""
        if not isinstance(k, int) or k < 1 or k > len(self.passages):
            raise InputError(f"retrieval: top-k = {k!r}: expected an integer from 1 to the "
                             f"corpus size ({len(self.passages)} passages)")
        mask = np.ones(len(self.passages), bool) if allowed is None else np.asarray(allowed, bool)
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        terms = [t for t in _tokens([query])[0] if t in self._vocab]
        bm25_order: list[int] = []
        if terms:
            scores = self.bm25.get_scores(terms)[candidates]
            positive = scores > 0
            order = np.argsort(-scores[positive], kind="stable")
            bm25_order = candidates[positive][order].tolist()
        query_vec = self.encoder.encode([query])[0]
        dense = self.embeddings[candidates] @ query_vec
        dense_order = candidates[np.argsort(-dense, kind="stable")].tolist()
        fused = rrf_fuse([bm25_order, dense_order], self.rrf_k)
        bm25_rank = {d: r for r, d in enumerate(bm25_order, start=1)}
        dense_rank = {d: r for r, d in enumerate(dense_order, start=1)}
        best = sorted(fused, key=lambda d: (-fused[d], d))[:k]
        return [Hit(passage=self.passages[d], score=fused[d], bm25_rank=bm25_rank.get(d),
                    dense_rank=dense_rank[d]) for d in best]
