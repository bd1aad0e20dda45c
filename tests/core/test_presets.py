"""Local servers by name: each preset resolves to its project's documented address and JSON mode, the
options still win, and a preset model really talks to a server (a fake one on 127.0.0.1). Ollama is spoken to
natively (models/ollama.py), at its server's root."""

from __future__ import annotations

import pytest

from recurrentgpt.cli import main
from recurrentgpt.errors import ConfigError
from recurrentgpt.models import get_model
from recurrentgpt.models.ollama import OllamaModel
from recurrentgpt.models.openai import OpenAIModel
from tests.fakeserver import FakeServer, status

# the addresses as each project documents them (docs/models.md links the pages)
DOCUMENTED = {
    "ollama:llama3.2": ("http://127.0.0.1:11434", "json_schema", "llama3.2", "ollama:llama3.2"),
    "ollama:qwen2.5:7b": ("http://127.0.0.1:11434", "json_schema", "qwen2.5:7b", "ollama:qwen2.5:7b"),
    "lmstudio:qwen2.5-7b-instruct": ("http://127.0.0.1:1234/v1", "json_schema", "qwen2.5-7b-instruct",
                                     "lmstudio:qwen2.5-7b-instruct"),
    "koboldcpp": ("http://127.0.0.1:5001/v1", "auto", "koboldcpp", "koboldcpp"),
    "llamacpp-server": ("http://127.0.0.1:8080/v1", "json_object", "default", "llamacpp-server"),
    "vllm:Qwen/Qwen2.5-7B-Instruct": ("http://127.0.0.1:8000/v1", "json_schema", "Qwen/Qwen2.5-7B-Instruct",
                                      "vllm:Qwen/Qwen2.5-7B-Instruct"),
}


@pytest.mark.parametrize("spec", DOCUMENTED)
def test_presets_resolve_to_the_documented_url_and_format(spec):
    url, fmt, name, shown = DOCUMENTED[spec]
    model = get_model(spec)
    assert isinstance(model, OllamaModel if spec.startswith("ollama") else OpenAIModel)
    assert (model.client.base_url, model.response_format, model.model, model.name) == (url, fmt, name, shown)


@pytest.mark.parametrize("spec", DOCUMENTED)
def test_presets_are_overridable(spec):
    model = get_model(spec, base_url="http://10.0.0.7:9999/v1", response_format="text")
    # (Ollama's native API is at the server's root: a /v1 given out of habit is dropped)
    expected = "http://10.0.0.7:9999" if spec.startswith("ollama") else "http://10.0.0.7:9999/v1"
    assert model.client.base_url == expected and model.response_format == "text"
    assert get_model(spec, response_format="auto").response_format == "auto"  # an explicit auto is kept


@pytest.mark.parametrize("spec", ["ollama", "lmstudio:", "vllm"])
def test_servers_with_many_models_need_a_name(spec):
    with pytest.raises(ConfigError, match="name the model"):
        get_model(spec)


def _first_request(*args):
    """Run the CLI against a server that refuses everything; what matters is the first request's body
    (independent of the answer's shape, which the prompts' owners may change)."""
    server = FakeServer()
    server.behaviours.append(status(400, "refused on purpose"))
    try:
        code = main([*[a.replace("{url}", server.url) for a in args], "--embedder", "hash",
                     "new", "fantasy", "a dragon", "--opening-paragraphs", "2"])
        assert code != 0 and len(server.bodies) == 1
        return server.bodies[0]
    finally:
        server.close()


def test_a_preset_sends_its_format_to_the_address_given():
    """The preset's format goes on the wire (json_object with the schema, for llama.cpp) and --base-url
    redirects it; the model field is the preset's default for a one-model server."""
    body = _first_request("--model", "llamacpp-server", "--base-url", "{url}")
    assert body["response_format"]["type"] == "json_object" and "properties" in body["response_format"]["schema"]
    assert body["model"] == "default"


def test_cli_response_format_option_beats_the_preset():
    body = _first_request("--model", "vllm:llama3.2", "--base-url", "{url}", "--response-format", "json_object")
    assert body["response_format"]["type"] == "json_object" and body["model"] == "llama3.2"
    body = _first_request("--model", "vllm:llama3.2", "--base-url", "{url}")
    assert body["response_format"]["type"] == "json_schema"
