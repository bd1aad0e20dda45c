"""`recurrentgpt keys`: keep a hosted provider's API key in the OS keyring (keys.py), never in a file."""

from __future__ import annotations

import sys

import click

from .. import keys as store
from ..errors import ConfigError
from .app import cli


@cli.group(name="keys", invoke_without_command=True)
@click.pass_context
def keys_group(ctx: click.Context) -> None:
    """API keys, one per hosted provider (openai, openrouter, groq, deepseek, mistral, together): each goes
    only to its own provider. A key comes from --api-key, else the provider's variable (OPENROUTER_API_KEY …),
    else the OS keyring, where `keys set NAME` keeps it (the optional `keyring` library:
    pip install 'recurrentgpt[keys]'). Without a keyring backend (a headless Linux without a Secret Service),
    `keys set` says so and changes nothing: use the variables."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_keys)


@keys_group.command(name="list")
def list_keys() -> None:
    """Each provider, its variable, and where its key would come from now (keys are never printed)."""
    click.echo(f"keyring: {store.describe_backend()}")
    for name, variable, source in store.sources():
        click.echo(f"  {name:11} ${variable:20} {source if source != 'none' else '(no key)'}")


@keys_group.command(name="set")
@click.argument("name")
@click.option("--value", help="The key (default: asked for without echo, or read from standard input).")
def set_key(name: str, value: str | None) -> None:
    """Keep NAME's key (a provider: openrouter, groq …) in the OS keyring."""
    store.check_name(name)
    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(f"{name} API key", hide_input=True)
        else:
            value = sys.stdin.readline().strip()
    if not value:
        raise ConfigError("the key is empty: nothing was stored")
    backend = store.store(name, value)
    click.echo(f"kept {name}'s key in {backend}")


@keys_group.command(name="remove")
@click.argument("name")
def remove_key(name: str) -> None:
    """Forget NAME's key from the OS keyring."""
    if store.remove(name):
        click.echo(f"removed {name}'s key")
    else:
        click.echo(f"no key was kept for {name}")
