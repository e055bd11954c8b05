"""Retrieval on the real knowledge base: ranking, threshold, product filter, MMR."""

from __future__ import annotations

import numpy as np

from knowledge.retrieve import contextualise


def test_hiking_boots_wide_sizes_returns_the_product_row_first(real_index):
    result = real_index.retriever.search("do the hiking boots come in wide sizes?")
    assert result.answerable
    assert result.passages[0].doc_id == "products.csv#TL-HIKE-01"
    assert "wide" in result.passages[0].text
    assert "guides/size-guide.html" in [p.doc_id for p in result.passages]


def test_nonsense_falls_below_the_threshold(real_index):
    for question in ("qwxz blorf zzzt?",
                     "what is the meaning of life, the universe and everything?"):
        result = real_index.retriever.search(question)
        assert not result.answerable, (question, result.best_score)
        assert result.best_score < real_index.config.retrieval.score_threshold


def test_policy_questions_find_their_policy(real_index):
    cases = {
        "how long do refunds take to reach my card?": "policies/refunds.md",
        "how much does express shipping cost?": "policies/shipping.md",
        "can I use two promo codes on one order?": "policies/promo-codes.md",
    }
    for question, source in cases.items():
        result = real_index.retriever.search(question, k=5)
        assert source in [p.doc_id for p in result.passages], question


def test_product_entity_filters_the_search(real_index):
    retriever = real_index.retriever
    question = "is the michael kors jacket warm enough for winter?"
    result = retriever.search(question, product="michael kors jacket", k=5)
    assert result.filtered and result.product_id == "MK-JKT-01"
    for passage in result.passages:
        assert (passage.metadata.get("product_id") == "MK-JKT-01"
                or "MK-JKT-01" in passage.metadata["products"])
    assert result.passages[0].doc_id == "products.csv#MK-JKT-01"
    unfiltered = retriever.search(question, k=5)
    assert any("MK-JKT-01" not in p.metadata["products"] for p in unfiltered.passages)


def test_filter_falls_back_when_the_product_has_nothing_relevant(real_index):
    result = real_index.retriever.search("how do I reset my password?", product="hiking boots")
    assert not result.filtered and result.answerable
    assert result.passages[0].doc_id == "policies/account-security.md"
    assert result.notes


def test_unknown_product_means_no_filter(real_index):
    result = real_index.retriever.search("do you sell hoverboards?", product="hoverboard")
    assert result.product_id is None and not result.filtered


def test_product_names_resolve(real_index):
    resolve = real_index.retriever.resolve_product
    assert resolve("hiking boots") == "TL-HIKE-01"
    assert resolve("Hiking Boot") == "TL-HIKE-01"
    assert resolve("tl-rain-01") == "TL-RAIN-01"
    assert resolve("guess") is None  # four Guess products: ambiguous
    assert resolve("hoverboard") is None


def test_mmr_diversifies_and_reports_true_similarities(real_index):
    retriever = real_index.retriever
    plain = retriever.search("jeans sizes", k=4)
    diverse = retriever.search("jeans sizes", k=4, mmr=True)
    assert len(diverse.passages) == 4
    assert diverse.passages[0].doc_id == plain.passages[0].doc_id
    assert [p.text for p in diverse.passages] != [p.text for p in plain.passages]
    query = retriever.embed("jeans sizes")
    for passage in diverse.passages:
        position = retriever._position[passage.metadata["id"]]
        expected = float(np.dot(query, retriever.index.reconstruct(position)))
        assert abs(passage.score - expected) < 1e-4


def test_mmr_with_a_product_filter(real_index):
    result = real_index.retriever.search("how do I clean my chelsea boots?",
                                         product="chelsea boots", k=3, mmr=True)
    assert result.filtered
    assert all("TL-CHEL-01" in p.metadata["products"] for p in result.passages)


def test_follow_up_questions_get_the_product_as_context():
    boots = "Chelsea Boots"
    assert contextualise("is it waterproof?", boots) == "is it waterproof? (Chelsea Boots)"
    assert contextualise("how long do refunds take?", boots) == "how long do refunds take?"
    assert contextualise("are the chelsea boots waterproof?", "Chelsea Boots") == (
        "are the chelsea boots waterproof?")
