"""The `recurrentgpt` command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import sys

import click

from .. import config as user_config
from ..errors import RecurrentGPTError

# (each registers its commands)
from . import batch, bible, config, evaluate, keys, library, navigate, play, series, serve, servers, write  # noqa: F401
from .app import cli

__all__ = ["cli", "main"]

NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def main(argv: list[str] | None = None) -> int:
    try:
        # the config file's values become click's default_map: below options and env vars, above defaults
        defaults = user_config.default_map(user_config.load(), cli.commands)
        # without standalone mode, click returns (not raises) the code of a command's Exit
        result = cli.main(args=argv, prog_name="recurrentgpt", standalone_mode=False, default_map=defaults)
    except RecurrentGPTError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except NO_ARGS_IS_HELP as e:  # `recurrentgpt` alone: the help text
        e.show()
        return 0
    except click.UsageError as e:  # one line, like every other mistake
        command = e.ctx.command_path if e.ctx else "recurrentgpt"
        click.echo(f"error: {' '.join(e.format_message().split())} (see '{command} --help')", err=True)
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("\ninterrupted: every finished step is saved; the one in progress was not", err=True)
        return 130
    except BrokenPipeError:
        return 141
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
