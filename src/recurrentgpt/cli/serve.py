"""`recurrentgpt serve`: the web studio over the same library as the other commands."""

from __future__ import annotations

import ipaddress

import click

from ..errors import ConfigError, InputError
from .app import Env, cli, pass_env


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
@pass_env
def serve(env: Env, host: str, port: int, token: str | None) -> None:
    """Start the web studio: write, steer and branch stories in the browser.

    Open the printed address. With a token, the address carries it once (?token=…); the page then
    keeps it in a cookie.
    """
    if not is_loopback(host) and not token:
        raise InputError(
            f"refusing to listen on {host} without a token: anyone who can reach it could write with your "
            "model and read your stories. Set --token (or RECURRENTGPT_TOKEN), or use --host 127.0.0.1"
        )
    try:
        import uvicorn

        from ..web import create_app
        from ..web.security import LOOPBACK_HOSTS
    except ImportError as e:
        raise ConfigError(f"the web studio needs the 'web' extra: pip install 'recurrentgpt[web]' ({e})") from None

    # without a token only loopback names are answered (DNS rebinding); with one, any name the token guards
    hosts = None if token else LOOPBACK_HOSTS | {host.strip("[]").lower()}
    app = create_app(env.loom, token=token, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"RecurrentGPT studio: {url}   (library {env.options['db']}; Ctrl+C stops)", err=True)
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning", timeout_graceful_shutdown=2)
