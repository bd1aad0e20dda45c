"""Servers and hosted APIs by name: ``--model ollama:NAME`` instead of ``openai:NAME --base-url …``.

Each preset is the server's documented default address, the way it constrains JSON (``response_format``; see
models/openai.py), the sampler fields it accepts under its own names, how it says its context window
(models/context.py) and, for a hosted API, the environment variable its key is read from (keys.py).
``--base-url`` and ``--response-format`` still win.

    ollama:NAME        Ollama            http://127.0.0.1:11434 (native /api/chat; $OLLAMA_HOST)  a JSON schema
    lmstudio:NAME      LM Studio         http://127.0.0.1:1234/v1    json_schema (LM Studio has no json_object mode)
    koboldcpp[:NAME]   KoboldCpp         http://127.0.0.1:5001/v1    auto (tries json_schema, json_object, text)
    llamacpp-server[:NAME]  llama.cpp's llama-server  http://127.0.0.1:8080/v1  json_object with a schema
    vllm:NAME          vLLM              http://127.0.0.1:8000/v1    json_schema
    openai:MODEL       OpenAI's API (or any OpenAI-compatible server with --base-url / $OPENAI_BASE_URL)
    openrouter:MODEL, groq:MODEL, deepseek:MODEL, mistral:MODEL, together:MODEL   hosted APIs, each with its key

The addresses, formats and field names are the ones each project documents (docs/models.md cites them).
Measured here only for llama.cpp's form: llama-cpp-python's server (tests/real/test_e2e_real.py) refuses json_schema
and takes json_object with a schema, the form llama.cpp's llama-server documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# our sampler names -> the fields the OpenAI API defines (every OpenAI-compatible server takes these)
STANDARD = {"top_p": "top_p", "presence_penalty": "presence_penalty", "seed": "seed"}
# llama.cpp's names, which its server, KoboldCpp and Ollama's options also take
LLAMA_CPP = {**STANDARD, "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"}

ENLARGE = "shorten the story's settings (--paragraph-sentences, --memory-words, --plan-sentences) or use a model " \
          "with a longer context"


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    base_url: str
    response_format: str
    needs_model: bool  # the server hosts several models and routes by name
    default_model: str = "default"
    kind: str = "hosted"  # which documented endpoints tell its context and list its models (models/context.py)
    samplers: dict[str, str] = field(default_factory=lambda: dict(STANDARD))  # our name -> the field it takes
    key_env: str | None = None  # a hosted API's conventional key variable (keys.py); local servers take none
    context_fix: str = ENLARGE  # one clause: how a writer gives a call more context on this server

    @property
    def hosted(self) -> bool:
        return self.key_env is not None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # Ollama's native API: its OpenAI-compatible route cannot set num_ctx (Ollama's own docs)
        Preset("ollama", "Ollama", "http://127.0.0.1:11434", "json_schema", True, kind="ollama",
               samplers=dict(LLAMA_CPP), context_fix="raise --num-ctx (Ollama's options.num_ctx)"),
        # LM Studio's OpenAI-compatible page lists top_k, repeat_penalty and seed, and no min_p
        Preset("lmstudio", "LM Studio", "http://127.0.0.1:1234/v1", "json_schema", True, kind="lmstudio",
               samplers={**STANDARD, "top_k": "top_k", "repeat_penalty": "repeat_penalty"},
               context_fix="load the model with a longer context (lms load MODEL --context-length 8192)"),
        Preset("koboldcpp", "KoboldCpp", "http://127.0.0.1:5001/v1", "auto", False, "koboldcpp", kind="koboldcpp",
               samplers=dict(LLAMA_CPP), context_fix="restart KoboldCpp with a larger --contextsize"),
        Preset("llamacpp-server", "llama.cpp server", "http://127.0.0.1:8080/v1", "json_object", False,
               kind="llamacpp", samplers=dict(LLAMA_CPP),
               context_fix="restart llama-server with a larger -c (each of its --parallel slots gets -c divided by "
                           "their number)"),
        # vLLM's extra sampling parameters: top_k, min_p and repetition_penalty (its name for it)
        Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", "json_schema", True, kind="vllm",
               samplers={**STANDARD, "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
               context_fix="restart vLLM with a larger --max-model-len"),
        Preset("openai", "OpenAI", "https://api.openai.com/v1", "json_schema", False, "gpt-4o-mini",
               key_env="OPENAI_API_KEY"),
        Preset("openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "auto", True, key_env="OPENROUTER_API_KEY",
               samplers={**STANDARD, "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"}),
        Preset("groq", "Groq", "https://api.groq.com/openai/v1", "auto", True, key_env="GROQ_API_KEY"),
        Preset("deepseek", "DeepSeek", "https://api.deepseek.com/v1", "auto", True, key_env="DEEPSEEK_API_KEY",
               samplers={"top_p": "top_p", "presence_penalty": "presence_penalty"}),
        # Mistral's API names the seed random_seed
        Preset("mistral", "Mistral", "https://api.mistral.ai/v1", "auto", True, key_env="MISTRAL_API_KEY",
               samplers={"top_p": "top_p", "presence_penalty": "presence_penalty", "seed": "random_seed"}),
        Preset("together", "Together AI", "https://api.together.xyz/v1", "auto", True, key_env="TOGETHER_API_KEY",
               samplers={**STANDARD, "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"}),
    )
}
SERVERS = tuple(name for name, p in PRESETS.items() if not p.hosted)  # the ones a writer runs
HOSTED = tuple(name for name, p in PRESETS.items() if p.hosted)


def split_spec(spec: str) -> tuple[Preset, str] | None:
    """``ollama:qwen2.5:7b`` -> (the Ollama preset, "qwen2.5:7b"); None when the spec names no preset.
    Only the first colon separates: model names may contain colons (Ollama tags)."""
    prefix, _, name = spec.partition(":")
    preset = PRESETS.get(prefix.strip().lower())
    if preset is None:
        return None
    return preset, name.strip()
