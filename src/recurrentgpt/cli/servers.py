"""`recurrentgpt models` and `recurrentgpt doctor`: what a server has, and whether the setup can write a story."""

from __future__ import annotations

from typing import Any

import click

from .. import config as user_config
from ..errors import ConfigError
from ..library import Library
from ..story import Settings
from .app import cli, pass_library


def _server(spec: str, options: dict[str, Any]) -> Any:
    """A backend for ``spec`` able to list its server's models (a preset that needs a model name gets a
    stand-in: listing needs none)."""
    from ..models import get_model, is_embedded, split_spec

    if is_embedded(spec) or spec == "scripted":
        raise ConfigError(f"{spec} runs in this process, not on a server: name one (recurrentgpt models ollama, "
                          "or --model SERVER:NAME)")
    preset = split_spec(spec)
    if preset is not None and not preset[1] and preset[0].needs_model:
        spec = f"{preset[0].name}:?"
    return get_model(spec, **options)


@cli.command()
@click.argument("server", required=False)
@pass_library
def models(library: Library, server: str | None) -> None:
    """List the models a server has: SERVER is a preset (ollama, lmstudio, koboldcpp, llamacpp-server, vllm,
    openrouter …) or a --model spec; without it, the server --model names (at --base-url, if given)."""
    options = library.options
    model = _server(server or options.model, options.model_options())
    try:
        rows = _rows(model)
    finally:
        model.close()
    for name, note in rows:
        click.echo(f"{name}{'  ' + note if note else ''}")
    if not rows:
        click.echo("(the server lists no models)", err=True)


def _rows(model: Any) -> list[tuple[str, str]]:
    """(name, what the server says of it) for each model: Ollama's size and quantization, LM Studio's state and
    context, vLLM's max_model_len."""
    kind = getattr(model, "kind", None) or ("ollama" if type(model).__name__ == "OllamaModel" else "")
    if kind == "ollama":
        data = model.client.get_json("/api/tags")
        out = []
        for row in data.get("models") or []:
            details = row.get("details") or {}
            out.append((row.get("name", "?"), " ".join(str(details[k]) for k in ("parameter_size", "quantization_level")
                                                       if details.get(k))))
        return out
    if kind == "lmstudio":
        try:
            data = model.client.get_json("/api/v0/models", root=True)
            return [(row.get("id", "?"), f"{row.get('type', '')} {row.get('state', '')} "
                                         f"max {row.get('max_context_length', '?')}"
                     + (f", loaded {row['loaded_context_length']}" if row.get("loaded_context_length") else ""))
                    for row in data.get("data") or []]
        except ConfigError:
            raise
        except Exception:  # an LM Studio without the v0 API: its OpenAI-compatible list
            pass
    data = model.client.get_json("/models")
    return [(row.get("id", "?"), f"max_model_len {row['max_model_len']}" if row.get("max_model_len") else "")
            for row in (data.get("data") or []) if isinstance(row, dict)]


@cli.command()
@click.argument("story", required=False)
@pass_library
def doctor(library: Library, story: str | None) -> int:
    """Check the model and embedder before a long run, one line each: the server answers and has the model, its
    context against what the story's calls need (STORY's settings, else the config file's), a one-token call,
    the JSON form it takes, the embedder. Exits 1 if any check fails."""
    from ..doctor import FAIL, check_embedder, check_model
    from ..embeddings import get_embedder
    from ..models import get_model

    options = library.options
    if story:
        settings = library.loom.story(story).settings
    else:
        settings = Settings.from_dict(user_config.load().get("settings"))
    lines = []
    try:
        model = get_model(options.model, **options.model_options())
    except ConfigError as e:
        from ..doctor import Check

        lines.append(Check("server", FAIL, str(e)))
        model = None
    if model is not None:
        try:
            lines += check_model(model, settings)
        finally:
            model.close()
    lines.append(check_embedder(lambda: get_embedder(options.embedder, base_url=options.base_url,
                                                     api_key=options.api_key, server_url=options.embedder_url)))
    for check in lines:
        click.echo(check.line())
    return 1 if any(c.status == FAIL for c in lines) else 0
