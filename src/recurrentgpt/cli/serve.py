"""`recurrentgpt serve`: the web studio over the same library as the other commands."""

from __future__ import annotations

import ipaddress
import os

import click

from ..errors import ConfigError, InputError
from ..library import Library
from ..models import is_embedded
from .app import cli, pass_library


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs --token.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port.")
@click.option("--token", envvar="RECURRENTGPT_TOKEN",
              help="Require this token on every request (default: $RECURRENTGPT_TOKEN).")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes over the same library (for more than 1, PostgreSQL: --db postgresql://…).")
@pass_library
def serve(library: Library, host: str, port: int, token: str | None, workers: int) -> None:
    """Start the web studio: write, steer and branch stories in the browser.

    Open the printed address. With a token, the address carries it once (?token=…); the page then
    keeps it in a cookie. With --workers N, N processes answer on the same port; each builds its own
    loom from the same options, and the stories live in the shared database.
    """
    if not is_loopback(host) and not token:
        raise InputError(
            f"refusing to listen on {host} without a token: anyone who can reach it could write with your "
            "model and read your stories. Set --token (or RECURRENTGPT_TOKEN), or use --host 127.0.0.1"
        )
    if workers > 1 and library.options.in_memory:
        raise InputError("an in-memory library cannot be shared by several workers: give --db a file or a URL")
    try:
        import uvicorn

        from ..web import create_app
        from ..web.app import environment_for
        from ..web.security import LOOPBACK_HOSTS
    except ImportError as e:
        raise ConfigError(f"the web studio needs the 'web' extra: pip install 'recurrentgpt[web]' ({e})") from None

    # without a token only loopback names are answered (DNS rebinding); with one, any name the token guards
    hosts = None if token else LOOPBACK_HOSTS | {host.strip("[]").lower()}
    loom = library.loom  # opens the library here: a wrong --db fails with one line, before any worker starts
    store = loom.describe()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    options = dict(host=host.strip("[]"), port=port, log_level="warning", timeout_graceful_shutdown=2)
    if workers == 1:
        click.echo(f"RecurrentGPT studio: {url}   (library {store.location}; Ctrl+C stops)", err=True)
        uvicorn.run(create_app(loom, token=token, allowed_hosts=hosts), **options)
        return

    # N processes: uvicorn needs an import string and a factory; each worker builds its own loom from
    # the environment set here (the schema is already migrated, by the loom opened above)
    loom.close()
    if is_embedded(library.options.model):
        click.echo(f"warning: with the embedded model ({library.options.model}) each of the {workers} workers loads "
                   f"its own copy and they compete for {os.cpu_count() or 1} cores, so each step gets slower; "
                   "several workers pay off with a model server (--model ollama:NAME, vllm:NAME, openai:…)",
                   err=True)
    if store.kind == "sqlite":
        click.echo(f"note: {workers} workers share the SQLite file {store.location}, which saves one step at a time; "
                   "for several workers PostgreSQL is better (--db postgresql://…, see docs/deployment.md)", err=True)
    for name, value in environment_for(library.options, token=token, allowed_hosts=hosts).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    click.echo(f"RecurrentGPT studio: {url}   ({workers} workers, library {store.location}; Ctrl+C stops)", err=True)
    uvicorn.run("recurrentgpt.web.app:app_from_env", factory=True, workers=workers, **options)
