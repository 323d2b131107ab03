"""The access log (both stores): append-only in the database itself, kept 183 days, exportable by an admin."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from jngis.access import Principal
from jngis.errors import ForbiddenError, ParameterError
from jngis.store.audit import ACCESS_LOG_COLUMNS, RETENTION_DAYS
from jngis.workorders import now_cst

STREET = Principal("u-street", "李四", "street", ("370102003",))


def _insert_old(store, days: int, action: str = "old.row") -> None:
    """A row written ``days`` ago (as a migration from an older system would write it)."""
    at = now_cst() - dt.timedelta(days=days)
    with store._write() as conn:
        store._execute(conn, f"INSERT INTO access_log({', '.join(ACCESS_LOG_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (store._to_db(at), "u-x", "admin", action, None, None, None, None))


def _owner_rights(store) -> str:
    """The owner's privilege letters on the PostgreSQL access log (``{owner=arxt/owner}`` -> ``arxt``)."""
    acl = store._execute(store._conn(), "SELECT relacl::text FROM pg_class WHERE relname = 'access_log' "
                                        "AND relnamespace = current_schema()::regnamespace").fetchone()[0]
    return acl.strip("{}").split(",")[0].split("=")[1].split("/")[0]


def _raw(store, statement: str) -> None:
    with store._write() as conn:
        store._execute(conn, statement)


def test_rows_are_written_and_read_by_time(slice_store):
    slice_store.log_access("orders.export", principal=STREET, target="workorders.csv", client="10.1.2.3")
    slice_store.log_access("personal.reveal", target="2026", reason="回访", detail="caller_phone")
    log = slice_store.access_log()
    assert log[["principal_id", "role", "action", "target", "client"]].values.tolist()[0] == [
        "u-street", "street", "orders.export", "workorders.csv", "10.1.2.3"]
    assert list(log.columns) == ["log_id", *ACCESS_LOG_COLUMNS] and len(log) == 2
    assert len(slice_store.access_log(since=now_cst() + dt.timedelta(minutes=1))) == 0
    assert len(slice_store.access_log(until=now_cst() + dt.timedelta(minutes=1))) == 2
    with pytest.raises(ForbiddenError, match="may not audit.export"):
        slice_store.access_log(principal=STREET)
    with pytest.raises(ParameterError, match="action is missing"):
        slice_store.log_access(" ")


def test_the_database_refuses_changes_and_young_deletions(slice_store):
    slice_store.log_access("users.add", target="u-1")
    for statement in ("UPDATE access_log SET action = 'nothing'", "DELETE FROM access_log"):
        with pytest.raises(Exception, match="append-only"):
            _raw(slice_store, statement)
    if slice_store.url.startswith("postgres"):
        with pytest.raises(Exception, match="append-only"):
            _raw(slice_store, "TRUNCATE access_log")
        assert not set("wdD") & set(_owner_rights(slice_store))  # no UPDATE, DELETE, TRUNCATE
    assert slice_store.access_log()["action"].tolist() == ["users.add"]


def test_pruning_keeps_six_months(slice_store):
    _insert_old(slice_store, RETENTION_DAYS + 30, "very.old")
    _insert_old(slice_store, RETENTION_DAYS - 5, "five.months")
    slice_store.log_access("today")
    with pytest.raises(ParameterError, match="less than 183 days ago"):
        slice_store.prune_access_log(now_cst() - dt.timedelta(days=100))
    with pytest.raises(ForbiddenError):
        slice_store.prune_access_log(now_cst() - dt.timedelta(days=200), principal=STREET)
    assert slice_store.prune_access_log(now_cst() - dt.timedelta(days=RETENTION_DAYS)) == 1
    assert slice_store.access_log()["action"].tolist() == ["five.months", "today", "audit.prune"]
    with pytest.raises(Exception, match="append-only"):  # and a hand-written DELETE keeps the young ones too
        _raw(slice_store, "DELETE FROM access_log")
    if slice_store.url.startswith("postgres"):  # pruning gave itself DELETE for its statement only
        assert "d" not in _owner_rights(slice_store)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_is_logged_and_holds_every_row(slice_store, tmp_path, suffix):
    slice_store.log_access("personal.reveal", principal=STREET, target="20261009000001", reason="回访")
    path = tmp_path / f"audit{suffix}"
    assert slice_store.export_access_log(path, client="127.0.0.1") == 2
    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_excel(path)
    assert frame["action"].tolist() == ["personal.reveal", "audit.export"]
    assert frame["reason"].tolist()[0] == "回访" and frame["client"].tolist()[1] == "127.0.0.1"
    with pytest.raises(ParameterError, match="expected a .csv or .xlsx"):
        slice_store.export_access_log(tmp_path / "audit.json")
    with pytest.raises(ForbiddenError):
        slice_store.export_access_log(path, principal=STREET)


def test_cli_exports_the_log(slice_store_url, tmp_path):
    from click.testing import CliRunner

    from jngis.cli import main
    from jngis.store import open_store

    with open_store(slice_store_url) as store:
        store.log_access("personal.reveal", principal=STREET, target="20261009000001", reason="回访")
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(main, ["audit", "export", str(out), "--since", "2020-01-01", "--store",
                                       slice_store_url])
    assert result.exit_code == 0, result.output
    assert "wrote 2 rows" in result.stderr
    assert pd.read_csv(out)["action"].tolist() == ["personal.reveal", "audit.export"]
    late = CliRunner().invoke(main, ["audit", "export", str(out), "--since", "2099-01-01", "--store",
                                     slice_store_url])
    assert late.exit_code == 0 and pd.read_csv(out)["action"].tolist() == []
