"""The one wrapper of every ``jngis`` command: a JngisError or Ctrl-C becomes one clear line and an exit status.

Its own module so that :mod:`jngis.cli` and the command modules it gathers
(``_cli_access``, ``_cli_versions``) import it without importing each other.
"""

from __future__ import annotations

import functools
import sys

import click

from jngis.errors import JngisError


def user_errors(func):
    """Turn JngisError and Ctrl-C into one clear line and an exit status (1, 130)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except JngisError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted: nothing was written", fg="yellow", err=True)
            sys.exit(130)

    return wrapper
