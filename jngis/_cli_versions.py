"""The ``jngis adopt`` and ``jngis versions`` commands (boundary versions of a store), for :mod:`jngis.cli`.

A planner's path: a plan GeoPackage (communities and/or grids, e.g. written
from a notebook) is adopted with an effective date; ``jngis versions list``
shows every version, ``show N`` one with its lineage, ``diff A B`` what changed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from jngis._cli_errors import user_errors

_STORE_HELP = "A city GeoPackage or a postgresql:// DSN (default: $JNGIS_STORE, else the sample city)."




def _store_target(store: str | None) -> str:
    from jngis.sample import sample_path

    return store or os.environ.get("JNGIS_STORE") or str(sample_path())


@click.command()
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--effective", default=None, help="The day it takes effect, YYYY-MM-DD (default: today).")
@click.option("--note", default=None, help="The decision, e.g. its document number.")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def adopt(plan: Path, effective: str | None, note: str | None, store: str | None) -> None:
    """Adopt the communities and/or grids of a GeoPackage as the store's next boundary version.

    Everything is checked first (units, tiling, codes, the date); a refusal
    names what is wrong and writes nothing. A future --effective stores the
    version pending until its day. The store must exist.
    """
    from jngis.store import open_store

    started = time.perf_counter()
    with open_store(_store_target(store), create=False) as opened:
        record = opened.adopt(plan, effective=effective, note=note, progress=True)
    summary = record["summary"]
    state = "in force" if record["status"] == "in_force" else f"pending until {record['effective']}"
    click.echo(f"adopted version {record['version_id']} ({state}) into {opened.url} "
               f"in {time.perf_counter() - started:.1f} s")
    click.echo(f"  units moved {summary['units_moved']:,}, households moved {summary['households_moved']:,}, "
               f"open orders re-placed {summary['orders_replaced']:,}")
    for kind in ("communities", "grids"):
        click.echo(f"  {kind}: " + ", ".join(f"{change} {summary[f'{kind}_{change}']}" for change in
                                             ("created", "split", "merged", "dissolved", "adjusted")))


@click.group()
def versions() -> None:
    """The boundary versions of a store: list, show one, diff two."""


@versions.command("list")
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def versions_list(store: str | None) -> None:
    """Every version: id, effective date, status, who adopted it, note."""
    from jngis.store import open_store

    with open_store(_store_target(store), create=False) as opened:
        frame = opened.versions()
    if frame.empty:
        click.echo("no versions yet (the first adoption records the current boundaries as version 1)")
    for row in frame.itertuples(index=False):
        click.echo(f"{row.version_id:>4}  {row.effective or '(since the start)'!s:<17} {row.status:<9} "
                   f"{row.adopted_by:<12} {row.note or ''}")


@versions.command("show")
@click.argument("version_id", type=int)
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def versions_show(version_id: int, store: str | None) -> None:
    """One version: its record, its summary and the lineage of its communities."""
    from jngis.store import open_store

    with open_store(_store_target(store), create=False) as opened:
        record = opened.version(version_id)
        lineage = opened.lineage(version_id, kind="communities")
    for key in ("version_id", "effective", "status", "adopted_at", "adopted_by", "note"):
        click.echo(f"{key:<11} {record[key]}")
    for key, value in record["summary"].items():
        click.echo(f"  {key:<22} {value}")
    moved = lineage[lineage["from_code"] != lineage["to_code"]]
    if len(moved):
        click.echo("households moved between communities:")
    for row in moved.itertuples(index=False):
        click.echo(f"  {row.from_code} -> {row.to_code}: {row.households:,} households, {row.units} units")


@versions.command("diff")
@click.argument("version_a", type=int)
@click.argument("version_b", type=int)
@click.option("--store", default=None, help=_STORE_HELP)
@user_errors
def versions_diff(version_a: int, version_b: int, store: str | None) -> None:
    """What changed from VERSION_A to VERSION_B: the summary and every changed community."""
    from jngis.store import open_store

    with open_store(_store_target(store), create=False) as opened:
        diff = opened.diff(version_a, version_b)
    for key, value in diff.summary.items():
        click.echo(f"{key:<22} {value}")
    for row in diff.communities.itertuples(index=False):
        click.echo(f"  {row.code} {row.change:<9} {row.households_before:>6,} -> {row.households_after:>6,} "
                   f"households  {row.partners}")
