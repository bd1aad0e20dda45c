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

    Options and environment variables override the file. API keys are never stored: keep them in
    the environment (OPENAI_API_KEY)."""
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
