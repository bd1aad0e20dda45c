"""The embedded engine's grammar after sampling (``models.grammar_sampling``), on the real bundled model."""

import json
import subprocess
import sys

import pytest

from recurrentgpt.models.base import Request
from recurrentgpt.models.llamacpp import LlamaCppModel

pytestmark = pytest.mark.slow

NUMBERS = {"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}},
           "required": ["numbers"]}


@pytest.mark.parametrize("seed", [1, 2])
def test_an_answer_sampled_before_the_grammar_still_matches_it_when_the_model_wants_to_write_something_else(seed):
    """Asked for a poem under a grammar that allows only a list of whole numbers, the model's own choice is
    refused again and again: those tokens are sampled anew under the grammar, and the answer is the numbers
    object. (That a token the grammar allows is kept as sampled is the next test's: here the model may want
    something else at every token; with the Q8_0 weights and seed 5 it did.) Broken builds seen failing: the
    grammar's verdict ignored, so a refused token is kept (llama.cpp aborts the process when the grammar is told
    to accept it); the grammar applied first to every token (nothing is ever refused)."""
    model = LlamaCppModel(seed=seed)
    answer = model.complete(Request("You are a poet.", "Write a short poem about the sea.", schema=NUMBERS,
                                    max_tokens=60, temperature=0.8))
    sampler = model._load()._sampler  # the sampler of the call just made (the first context's, the only one used)
    assert sampler.resampled >= 1, "the grammar never refused the model's choice: this test proves nothing"
    assert sampler.resampled <= sampler.sampled
    text = answer.text.strip()
    if answer.finish_reason == "stop":
        assert all(isinstance(n, int) for n in json.loads(text)["numbers"])
    else:  # cut at max_tokens: still only what the grammar allows so far
        assert text.startswith("{") and set(text.split("[", 1)[1]) <= set("0123456789-, \n")


@pytest.mark.parametrize("seed", [1, 2])
def test_a_token_the_grammar_allows_is_kept_as_the_model_sampled_it(seed):
    """The point of sampling first: the grammar is asked about the sampled token only, and a token it allows is
    never sampled again. Under a grammar that allows any text, no token of any answer is resampled. Broken build
    seen failing: every token sampled a second time under the grammar (the grammar applied first, in effect)."""
    from llama_cpp import LlamaGrammar

    llm = LlamaCppModel(seed=seed)._load()
    anything = LlamaGrammar.from_string("root ::= [^\\x00]*", verbose=False)
    llm.create_completion("The sea at night was", max_tokens=30, temperature=0.8, grammar=anything)
    assert llm._sampler.sampled >= 1 and llm._sampler.resampled == 0


def test_a_schema_llama_cpp_cannot_compile_is_a_model_error_and_the_engine_keeps_working():
    """llama.cpp refuses a grammar of more than 2,000 rules (a long ``maxLength`` expands to one per character);
    llama-cpp-python would chain a null sampler and the process would die without a word. The engine raises a
    ModelError instead, and its next call works. Run in a child process, so a broken build kills the child, not
    the test run. Broken build seen failing: the null check removed (the child dies)."""
    code = (
        "from recurrentgpt.errors import ModelError\n"
        "from recurrentgpt.models.base import Request\n"
        "from recurrentgpt.models.llamacpp import LlamaCppModel\n"
        "m = LlamaCppModel(seed=1)\n"
        "bad = {'type': 'object', 'properties': {'s': {'type': 'string', 'maxLength': 2500}}, 'required': ['s']}\n"
        "try:\n"
        "    m.complete(Request('s', 'Write.', schema=bad, max_tokens=10))\n"
        "except ModelError as e:\n"
        "    print('MODEL ERROR:', e)\n"
        "ok = {'type': 'object', 'properties': {'c': {'type': 'string'}}, 'required': ['c']}\n"
        "print('NEXT:', m.complete(Request('s', 'Name a colour.', schema=ok, max_tokens=20)).text)\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-500:]
    assert "MODEL ERROR: the embedded engine could not compile" in child.stdout
    assert "NEXT: {" in child.stdout
