"""Queries embedded by an int8 copy of the model (`query_int8`, EmbeddingGemma's default):
the copy's Linear layers are quantized, everything else is shared with the passage model, and the passage
model stays float, so vectors already stored stay valid. Checked on the real bundled MiniLM (EmbeddingGemma's
weights are not installed by the test extras); torch quantizes any model's nn.Linear layers the same way."""

from __future__ import annotations

import numpy as np
import pytest

from recurrentgpt.embeddings import get_embedder

pytestmark = pytest.mark.slow

PASSAGES = [
    "The ferry left the harbour at dawn, its horn sounding twice over the grey water.",
    "In the library the old clock had stopped at a quarter past three, and nobody wound it.",
    "She planted the apple trees along the south wall, where the frost came last.",
]
PLAN = "A boat sets off across the sea early in the morning."


@pytest.fixture(scope="module")
def embedders():
    from recurrentgpt.embeddings.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(), SentenceTransformerEmbedder(query_int8=True)


def test_int8_queries_come_from_a_quantized_copy_sharing_the_rest_and_passages_stay_float(embedders):
    """(Seen failing against three broken builds: quantizing the passage model in place — passages changed; the
    copy made without deepcopy's memo — the word embeddings were duplicated, not shared; `query_int8` ignored —
    the query model still had float Linear layers.)"""
    import torch

    plain, quantized = embedders
    np.testing.assert_allclose(quantized.embed(PASSAGES), plain.embed(PASSAGES), atol=1e-6)
    query = quantized.embed_query(PLAN)
    np.testing.assert_allclose(quantized.embed(PASSAGES), plain.embed(PASSAGES), atol=1e-6)  # after the copy too

    model, query_model = quantized._load(), quantized.query_model()
    assert quantized.query_precision == "int8" and query_model is not model
    assert not any(isinstance(m, torch.nn.Linear) for m in query_model.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())
    shared = {id(p) for p in query_model.parameters()}  # (quantized weights are packed, not parameters)
    assert shared and shared <= {id(p) for p in model.parameters()}

    float_query = plain.embed_query(PLAN)
    assert plain.query_precision == "float32" and plain.query_model() is plain._load()
    assert float(query @ float_query) > 0.9  # the same direction, not the same bits
    assert np.argmax(plain.embed(PASSAGES) @ query) == np.argmax(plain.embed(PASSAGES) @ float_query) == 0


def test_a_torch_that_cannot_quantize_embeds_queries_in_float(monkeypatch):
    """(Seen failing with the RuntimeError left to propagate: the first recall raised.)"""
    import torch.ao.quantization

    from recurrentgpt.embeddings.sentence_transformers import SentenceTransformerEmbedder

    def no_engine(*args, **kwargs):
        raise RuntimeError("Didn't find engine for operation quantized::linear_prepack NoQEngine")

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", no_engine)
    embedder = SentenceTransformerEmbedder(query_int8=True)
    assert embedder.embed_query(PLAN).shape == (384,)
    assert embedder.query_precision == "float32" and embedder.query_model() is embedder._load()


def test_embeddinggemma_embeds_queries_in_int8_and_the_others_in_float():
    """Only EmbeddingGemma was measured with int8 queries (2.3x faster, same recall on both novels). (Seen failing
    with get_embedder building it without query_int8.)"""
    assert get_embedder("embeddinggemma").query_int8 is True
    assert get_embedder("minilm").query_int8 is False and get_embedder("mpnet").query_int8 is False
