"""The ``jngis users`` and ``jngis audit`` commands (part of :mod:`jngis.cli`).

Whoever can open the store is its administrator here (the CLI acts as
:data:`jngis.access.ADMIN`); every change is written to the access log. A
token is printed once, alone on standard output, so it can be piped into a
secret store; everything else goes to standard error.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from jngis._cli_errors import user_errors

_STORE_HELP = "A city GeoPackage or a postgresql:// DSN (default: $JNGIS_STORE, else the sample city)."


def _open(store: str | None):
    from jngis.sample import sample_path
    from jngis.store import open_store

    return open_store(store or os.environ.get("JNGIS_STORE") or str(sample_path()), create=False)




@click.group()
def users() -> None:
    """Users of the store: add (prints the token once), list, disable, rotate."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help="admin, planner, hotline, street, department, grid or leader.")
@click.option("--scope", "scopes", multiple=True,
              help="A code the user works in (6/9/12/15 digits, or a department code); repeat or comma-separate.")
@click.option("--expires", default=None, help="90d, 12h or an ISO date (default: never).")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def users_add(name: str, role: str, scopes: tuple[str, ...], expires: str | None, store: str | None) -> None:
    """Add a user and print their API token (shown this once: keep it)."""
    codes = [code for text in scopes for code in text.replace(",", " ").split()]
    with _open(store) as opened:
        user, token = opened.add_user(name, role=role, scope=codes, expires=expires)
    click.echo(f"added {user['user_id']} {user['name']} ({user['role']}, scope "
               f"{', '.join(user['scope']) or 'the whole city'}, expires {user['expires_at'] or 'never'})", err=True)
    click.secho("the token below is shown only this once:", fg="yellow", err=True)
    click.echo(token)


@users.command("list")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def users_list(store: str | None) -> None:
    """Every user: id, name, role, scope, expiry, disabled, token id (never a token)."""
    with _open(store) as opened:
        listed = opened.list_users()
    if not listed:
        click.echo("no users", err=True)
    for user in listed:
        state = "disabled" if user["disabled"] else "active"
        click.echo(f"{user['user_id']}\t{user['name']}\t{user['role']}\t{','.join(user['scope']) or '-'}\t"
                   f"{user['expires_at'] or 'never'}\t{state}\t{user['token_id']}")


@users.command("disable")
@click.argument("user_id")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def users_disable(user_id: str, store: str | None) -> None:
    """Disable a user: their token is refused from the next request on, in every server process."""
    with _open(store) as opened:
        opened.disable_user(user_id)
    click.echo(f"disabled {user_id}", err=True)


@users.command("rotate")
@click.argument("user_id")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def users_rotate(user_id: str, store: str | None) -> None:
    """Give a user a new token (printed once); the old one is refused from now on."""
    with _open(store) as opened:
        token = opened.rotate_token(user_id)
    click.secho(f"new token of {user_id}, shown only this once:", fg="yellow", err=True)
    click.echo(token)


@click.group()
def audit() -> None:
    """The access log (reveals of personal data, user changes, exports)."""


@audit.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", default=None, help="From this time (ISO, China Standard Time).")
@click.option("--until", default=None, help="Before this time (ISO).")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def audit_export(out: Path, since: str | None, until: str | None, store: str | None) -> None:
    """Write the access log to OUT (.csv or .xlsx); the export itself is logged."""
    with _open(store) as opened:
        rows = opened.export_access_log(out, since, until, client="cli")
    click.echo(f"wrote {rows:,} rows of the access log to {out}", err=True)


__all__ = ["users", "audit"]
