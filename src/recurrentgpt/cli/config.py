"""`recurrentgpt config`: show and change the default configuration (src/recurrentgpt/config.py)."""

from __future__ import annotations

import click
from click.core import ParameterSource

from .. import config as user_config
from .app import cli

SOURCES = {
    ParameterSource.COMMANDLINE: "option",
    ParameterSource.ENVIRONMENT: "environment",
    ParameterSource.DEFAULT_MAP: "config file",
    ParameterSource.DEFAULT: "default",
}


@cli.group(name="config", invoke_without_command=True)
@click.pass_context
def config_group(ctx: click.Context) -> None:
    """Show the default configuration (model, server, embedder, library, settings) and where each value
    comes from; `config set KEY VALUE` and `config unset KEY` change the file.

    Options and environment variables override the file. API keys never go in the file: they come from
    each provider's own variable (OPENROUTER_API_KEY …) or the OS keyring (`recurrentgpt keys set NAME`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(show)


@config_group.command()
@click.pass_context
def show(ctx: click.Context) -> None:
    """The values in effect now, and the file's path."""
    root = ctx.find_root()
    file = user_config.path()
    click.echo(f"config file: {file}{'' if file.exists() else '  (none yet: `recurrentgpt config set KEY VALUE`)'}")
    for param in root.command.params:
        if param.name in ("version", "help") or param.name is None:
            continue
        value = root.params.get(param.name)
        source = SOURCES.get(root.get_parameter_source(param.name), "default")  # type: ignore[arg-type]
        if param.name == "api_key":
            shown = "(set)" if value else "(not set)"  # a key is never printed
        elif value is None:
            shown = "auto (or the server preset's)" if param.name == "response_format" else "(none)"
        else:
            shown = str(value)
        click.echo(f"  {param.name:16} {shown}   [{source}]")
    _show_server(root)
    data = user_config.load()
    for key in ("author", *user_config.CONTACT):
        if data.get(key):
            click.echo(f"  {key:16} {data[key]}   [config file]")
    for name, value in (data.get("settings") or {}).items():
        click.echo(f"  settings.{name:7} {value}   [config file]")


@config_group.command(name="set")
@click.argument("key")
@click.argument("value")
def set_(key: str, value: str) -> None:
    """Set KEY (model, base_url, embedder, db, author, … or settings.NAME) to VALUE."""
    data = user_config.set_value(user_config.load(), key, value)
    file = user_config.save(data)
    click.echo(f"{key} = {value}   (in {file})")


@config_group.command()
@click.argument("key")
def unset(key: str) -> None:
    """Remove KEY from the file (back to the built-in default)."""
    data = user_config.unset_value(user_config.load(), key)
    file = user_config.save(data)
    click.echo(f"removed {key}   (from {file})")


@config_group.command()
def keys() -> None:
    """The keys the file can hold."""
    for key, (kind, what) in user_config.KEYS.items():
        click.echo(f"  {key:20} {kind.__name__:6} {what}")
    for name, kind in user_config.SETTINGS.items():
        click.echo(f"  settings.{name:11} {kind.__name__:6} a new story's setting (--{name.replace('_', '-')})")


def _show_server(root: click.Context) -> None:
    """Where the model's calls go and with which key, and where each came from (``$OPENAI_BASE_URL`` moves
    ``openai:`` only, never a named server)."""
    from .. import keys
    from ..models import address, split_spec

    spec, base_url = root.params.get("model"), root.params.get("base_url")
    where = address(spec, base_url)
    if where is None:
        click.echo(f"  {'server':16} (none: {spec or 'smollm2'} runs in this process)")
        return
    url, source = where
    if base_url:
        source = {ParameterSource.ENVIRONMENT: "$RECURRENTGPT_BASE_URL",
                  ParameterSource.DEFAULT_MAP: "config file"}.get(root.get_parameter_source("base_url"),  # type: ignore[arg-type]
                                                                  "--base-url")
    click.echo(f"  {'server':16} {url}   [{source}]")
    preset = split_spec((spec or "").strip())
    _, key_source = keys.resolve(preset[0] if preset else None, url, root.params.get("api_key"))
    if key_source == "--api-key" and root.get_parameter_source("api_key") == ParameterSource.ENVIRONMENT:
        key_source = "$RECURRENTGPT_API_KEY"
    click.echo(f"  {'key':16} {'(set)' if key_source != 'none' else '(none)'}   [{key_source}]")
