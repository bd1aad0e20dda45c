"""The `recurrentgpt` command line. Errors a user can fix print one line and exit non-zero."""

from __future__ import annotations

import sys

import click

from ..errors import RecurrentGPTError
from . import batch, bible, evaluate, library, navigate, play, serve, write  # noqa: F401  (they register their commands)
from .app import cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="recurrentgpt", standalone_mode=False)
    except RecurrentGPTError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
