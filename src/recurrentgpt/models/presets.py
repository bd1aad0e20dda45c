"""Local OpenAI-compatible servers by name: ``--model ollama:NAME`` instead of ``openai:NAME --base-url …``.

Each preset is the server's documented default address and the way it constrains JSON
(``response_format``; see models/openai.py). ``--base-url`` and ``--response-format`` still win.

    ollama:NAME        Ollama            http://127.0.0.1:11434/v1   json_schema (Ollama >= 0.5 structured outputs)
    lmstudio:NAME      LM Studio         http://127.0.0.1:1234/v1    json_schema (LM Studio has no json_object mode)
    koboldcpp[:NAME]   KoboldCpp         http://127.0.0.1:5001/v1    auto (tries json_schema, json_object, text)
    llamacpp-server[:NAME]  llama.cpp's llama-server  http://127.0.0.1:8080/v1  json_object with a schema
    vllm:NAME          vLLM              http://127.0.0.1:8000/v1    json_schema

The addresses and formats are the ones each project documents (docs/models.md cites them). Measured
here only for llama.cpp's form: llama-cpp-python's server (tests/real/test_e2e_real.py) refuses json_schema and
takes json_object with a schema, the form llama.cpp's llama-server documents.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    base_url: str
    response_format: str
    needs_model: bool  # the server hosts several models and routes by name
    default_model: str = "default"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("ollama", "Ollama", "http://127.0.0.1:11434/v1", "json_schema", True),
        Preset("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", "json_schema", True),
        Preset("koboldcpp", "KoboldCpp", "http://127.0.0.1:5001/v1", "auto", False, "koboldcpp"),
        Preset("llamacpp-server", "llama.cpp server", "http://127.0.0.1:8080/v1", "json_object", False),
        Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", "json_schema", True),
    )
}


def split_spec(spec: str) -> tuple[Preset, str] | None:
    """``ollama:qwen2.5:7b`` -> (the Ollama preset, "qwen2.5:7b"); None when the spec names no preset.
    Only the first colon separates: model names may contain colons (Ollama tags)."""
    prefix, _, name = spec.partition(":")
    preset = PRESETS.get(prefix.strip().lower())
    if preset is None:
        return None
    return preset, name.strip()
