"""Hybrid retrieval on a real slice of the UNSC record (1946-1948) with the embedded MiniLM:
fusion against the closed form, BM25 ranks against a brute-force Okapi BM25, dense ranks against
cosine similarity, provenance on every hit, the guard under a worst-case query, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.corpus import build_corpus
from transferscope.bias.debias.leakage import LeakageGuard, scope_of
from transferscope.bias.debias.retrieval import HybridRetriever, _tokens, rrf_fuse
from transferscope.bias.probes.base import Item
from transferscope.core.cache import Cache
from transferscope.core.errors import InputError

LAST_YEAR = 1948


def record_until(year: int) -> Record:
    full = load_record()
    drafts = full.drafts[full.drafts["year"] <= year].reset_index(drop=True)
    ids = set(drafts["draft_id"])
    return Record(drafts=drafts,
                  p5_votes=full.p5_votes[full.p5_votes["draft_id"].isin(ids)].reset_index(
        drop=True), texts=full.texts[full.texts["year"] <= year].reset_index(drop=True), build=full.build)


@pytest.fixture(scope="module")
def record() -> Record:
    return record_until(LAST_YEAR)


@pytest.fixture(scope="module")
def retriever(record: Record) -> HybridRetriever:
    return HybridRetriever(build_corpus(record))


def test_rrf_matches_the_closed_form():
    fused = rrf_fuse([[2, 0, 1], [0, 2]], rrf_k=60)
    assert fused[0] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1] == pytest.approx(1 / 63)


def test_corpus_slice_has_all_three_kinds_with_source_and_date(retriever):
    kinds = {p.kind for p in retriever.passages}
    assert kinds == {"resolution text", "draft outcome", "meeting outcome"}
    assert all(p.source and p.date.year <= LAST_YEAR for p in retriever.passages)


def test_hits_carry_source_and_date_and_bm25_ranks_match_brute_force(retriever):
    query = "Russia veto draft resolution on the Corfu Channel incident"
    hits = retriever.search(query, 8)
    assert len(hits) == 8
    for hit in hits:
        assert hit.passage.source and hit.passage.date.isoformat() in hit.passage.cite()
    docs = _tokens([p.text for p in retriever.passages])
    terms = _tokens([query])[0]
    n, avg = len(docs), sum(map(len, docs)) / len(docs)
    def okapi(doc: list[str]) -> float:  # Lucene's BM25 (k1 = 1.5, b = 0.75), by hand
        total = 0.0
        for t in terms:
            df = sum(t in d for d in docs)
            tf = doc.count(t)
            if df and tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                total += idf * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * len(doc) / avg))
        return total
    brute = np.array([okapi(d) for d in docs])
    for hit in hits:
        if hit.bm25_rank is not None:
            i = retriever.passages.index(hit.passage)
            assert hit.bm25_rank == 1 + int((brute > brute[i] + 1e-9).sum()) or \
                abs(np.sort(brute)[::-1][hit.bm25_rank - 1] - brute[i]) < 1e-6


def test_a_passage_is_its_own_nearest_dense_neighbour(retriever):
    target = retriever.passages[40]
    hits = retriever.search(target.text, 3)
    assert hits[0].passage == target and hits[0].dense_rank == 1 and hits[0].bm25_rank == 1
    cosine = retriever.embeddings @ retriever.encoder.encode([target.text])[0]
    assert int(np.argmax(cosine)) == 40


def test_guard_holds_when_the_query_is_the_forbidden_passage(record, retriever):
    own = next(p for p in retriever.passages if p.kind == "draft outcome"
               and p.date.year == 1948 and "vetoed" in p.text)
    item = Item(test="vote", form="role", item_id="x", conversation=[{"role": "user",
                                                                      "content": own.text}], options=("A", "B"),
                nation="Russia", gold="against", meta={"draft_id": own.draft_ids[0]})
    unguarded = retriever.search(own.text, 5)
    assert unguarded[0].passage == own  # the attack would succeed without the guard
    scope = scope_of(item, record)
    guarded = retriever.search(own.text, 5, LeakageGuard(retriever.passages).allowed(scope))
    assert len(guarded) == 5
    assert all(h.passage.date < own.date and own.draft_ids[0] not in h.passage.draft_ids
               for h in guarded)


def test_index_is_cached_and_reloaded_identically(record, retriever, tmp_path, monkeypatch):
    """A spy on the encoder proves the hit: the first build in an empty cache encodes every
    passage, a second build encodes none and returns the same array; with only the per-chunk
    parts left (an interrupted build), the index is reassembled without encoding either."""
    from transferscope.core.embeddings import SentenceEncoder

    encoded: list[int] = []
    real_encode = SentenceEncoder.encode

    def counting_encode(self, texts):
        encoded.append(len(texts))
        return real_encode(self, texts)

    monkeypatch.setattr(SentenceEncoder, "encode", counting_encode)
    passages = build_corpus(record)[:70]  # two encoder chunks
    cache = Cache("bias-retrieval", tmp_path)
    first = HybridRetriever(passages, cache=cache)
    assert sum(encoded) == len(passages)  # computed: every passage encoded once
    np.testing.assert_allclose(first.embeddings, retriever.embeddings[:70], atol=1e-6)
    encoded.clear()
    again = HybridRetriever(passages, cache=cache)
    assert encoded == []  # a cache hit: the encoder never ran
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    for entry in cache.root.rglob("*.npy"):  # drop the assembled index, keep the parts
        entry.unlink()
    resumed = HybridRetriever(passages, cache=cache)
    assert encoded == []
    np.testing.assert_array_equal(resumed.embeddings, first.embeddings)


def test_bad_input_is_one_clear_error(retriever):
    n = len(retriever.passages)
    with pytest.raises(InputError, match=f"top-k = {n + 1}.*corpus size \\({n} passages\\)"):
        retriever.search("veto", n + 1)
    with pytest.raises(InputError, match="top-k = 0"):
        retriever.search("veto", 0)
    with pytest.raises(InputError, match="retrieval corpus: 0 passages"):
        HybridRetriever([])
    empty = record_until(1900)
    with pytest.raises(InputError, match="retrieval corpus: 0 passages from 0 drafts"):
        build_corpus(empty)
    assert retriever.search("veto", 3, np.zeros(n, bool)) == []  # nothing earlier: no evidence
