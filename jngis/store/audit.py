"""The access log: who saw or changed what, append-only, kept at least 6 months.

Reveals of personal data, user changes, admin actions, bulk exports and
failed sign-ins (folded per client and minute, :class:`jngis.throttle.FailureLog`) each
write one row ``(at, principal_id, role, action, target, detail, reason,
client)``, inside the transaction of what they record. The database itself
keeps the table append-only: SQLite triggers raise on UPDATE and on a DELETE
of any row younger than the retention; PostgreSQL has a trigger doing the same
(and refusing TRUNCATE), and the store's own role holds no UPDATE, DELETE or
TRUNCATE right on the table (:meth:`AuditLog.prune_access_log` grants itself
DELETE for its one statement).

Retention (China's Cybersecurity Law art. 21: network logs kept no less than
six months): a row is never deleted before :data:`RETENTION_DAYS` (183) days;
:meth:`AuditLog.prune_access_log` refuses a cut-off younger than that, and the
triggers refuse it even to a hand-written DELETE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from jngis import _checks, access
from jngis.access import Principal
from jngis.errors import InputTypeError, ParameterError
from jngis.store._scope import StorePart
from jngis.store.schema import SqlTypes
from jngis.throttle import FailedSignIns
from jngis.workorders import now_cst, to_cst

__all__ = ["RETENTION_DAYS", "ACCESS_LOG_COLUMNS", "access_log_sql", "AuditLog"]

#: Days a row of the access log is kept at least (six months and a few days).
RETENTION_DAYS = 183
ACCESS_LOG_COLUMNS: tuple[str, ...] = ("at", "principal_id", "role", "action", "target", "detail", "reason",
                                       "client")
_REFUSED = "access_log is append-only"


def access_log_sql(types: SqlTypes, dialect: str) -> list[str]:
    """The statements creating the access log and what keeps it append-only (each idempotent)."""
    table = (f"CREATE TABLE IF NOT EXISTS access_log (log_id {types.serial}, at {types.time} NOT NULL, "
             f"principal_id {types.text} NOT NULL, role {types.text} NOT NULL, action {types.text} NOT NULL, "
             f"target {types.text}, detail {types.text}, reason {types.text}, client {types.text})")
    index = "CREATE INDEX IF NOT EXISTS access_log_at ON access_log(at)"
    if dialect == "sqlite":
        young = f"strftime('%Y-%m-%dT%H:%M:%S', 'now', '+8 hours', '-{RETENTION_DAYS} days')"
        return [table, index,
                "CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: a row cannot be changed'); END",
                f"CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log WHEN old.at > {young} "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}: rows younger than {RETENTION_DAYS} days are kept'); END"]
    guard = f"""CREATE OR REPLACE FUNCTION jngis_access_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                IF OLD.at < (now() AT TIME ZONE 'Asia/Shanghai') - interval '{RETENTION_DAYS} days' THEN
                    RETURN OLD;
                END IF;
                RAISE EXCEPTION '{_REFUSED}: rows younger than {RETENTION_DAYS} days are kept';
            END IF;
            RAISE EXCEPTION '{_REFUSED}: % refused', TG_OP;
        END $$"""
    return [table, index, guard,
            "CREATE OR REPLACE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
            "FOR EACH ROW EXECUTE FUNCTION jngis_access_log_guard()",
            "CREATE OR REPLACE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION jngis_access_log_guard()",
            "REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM PUBLIC, CURRENT_USER"]


class AuditLog(StorePart):
    """The store's access log (mixed into :class:`jngis.store.Store`)."""

    def _log(self, conn: Any, principal: Principal, action: str, *, target: Any = None, detail: Any = None,
             reason: Any = None, client: Any = None) -> None:
        """Append one row inside the open transaction ``conn``."""
        values = {"at": now_cst(), "principal_id": principal.id, "role": principal.role,
                  "action": _checks.text("log_access", "action", action, max_length=100, required=True),
                  "target": _checks.text("log_access", "target", target, max_length=200),
                  "detail": _checks.text("log_access", "detail", detail, max_length=2000),
                  "reason": _checks.text("log_access", "reason", reason, max_length=500),
                  "client": _checks.text("log_access", "client", client, max_length=200)}
        self._execute(conn, f"INSERT INTO access_log({', '.join(ACCESS_LOG_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(ACCESS_LOG_COLUMNS))})",
                      [self._to_db(values[c]) for c in ACCESS_LOG_COLUMNS])

    def log_access(self, action: str, *, principal: Principal = access.ADMIN, target: str | None = None,
                   detail: str | None = None, reason: str | None = None, client: str | None = None) -> None:
        """Append one row to the access log, now (what the server records of its own actions).

        ``action`` is what was done (``"personal.reveal"``, ``"users.add"``,
        ``"orders.export"``...), ``target`` what it was done to (an order or user
        id), ``client`` the address it came from.
        """
        principal = access.principal(principal)
        with self._write() as conn:
            self._log(conn, principal, action, target=target, detail=detail, reason=reason, client=client)

    def log_failed_sign_ins(self, rows: Iterable[FailedSignIns]) -> int:
        """Append failed sign-ins (:class:`jngis.throttle.FailureLog` rows) to the access log; returns how many.

        Each row is ``action="auth.failed"``, by the anonymous principal, with
        the kind of credential as ``target`` (user token, jwt, bootstrap,
        other), the failure's class as ``reason`` (unknown id, wrong secret,
        expired, bad signature, disabled...), the count and time span as
        ``detail`` and the client's address: never the token or its secret.
        """
        rows = list(rows)
        for row in rows:
            if not isinstance(row, FailedSignIns):
                raise InputTypeError(f"log_failed_sign_ins: a row is a {type(row).__name__}; expected "
                                     "FailedSignIns rows of jngis.throttle.FailureLog")
        if rows:
            with self._write() as conn:
                for row in rows:
                    self._log(conn, access.ANONYMOUS, "auth.failed", target=row.credential, detail=row.detail,
                              reason=row.failure, client=row.client)
        return len(rows)

    def access_log(self, since: Any = None, until: Any = None, *,
                   principal: Principal = access.ADMIN) -> pd.DataFrame:
        """The access log's rows with ``since <= at < until`` (either open), oldest first.

        Needs ``audit.export`` (administrators). Columns: ``log_id`` and
        :data:`ACCESS_LOG_COLUMNS`.
        """
        access.require(access.principal(principal), "audit.export")
        clauses, params = [], []
        for bound, op, name in ((since, ">=", "since"), (until, "<", "until")):
            if bound is not None:
                clauses.append(f"at {op} ?")
                params.append(self._to_db(to_cst(bound, name)))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(self._conn(), f"SELECT log_id, {', '.join(ACCESS_LOG_COLUMNS)} FROM access_log"
                                           f"{where} ORDER BY log_id", params).fetchall()
        frame = pd.DataFrame(rows, columns=("log_id", *ACCESS_LOG_COLUMNS))
        frame["at"] = pd.to_datetime(frame["at"], format="ISO8601")
        return frame

    def export_access_log(self, path: str | Path, since: Any = None, until: Any = None, *,
                          principal: Principal = access.ADMIN, client: str | None = None) -> int:
        """Write the access log (:meth:`access_log`) to a ``.csv`` or ``.xlsx`` file; returns the rows.

        The export itself is logged (``audit.export``) before the rows are read,
        so it appears in its own file.
        """
        target = Path(path)
        if target.suffix.lower() not in (".csv", ".xlsx"):
            raise ParameterError(f"export_access_log: path={str(path)!r}; expected a .csv or .xlsx file")
        principal = access.principal(principal)
        access.require(principal, "audit.export")
        self.log_access("audit.export", principal=principal, target=target.name,
                        detail=f"since={since} until={until}", client=client)
        frame = self.access_log(since, until, principal=principal)
        if target.suffix.lower() == ".csv":
            frame.to_csv(target, index=False, encoding="utf-8-sig")
        else:
            frame.to_excel(target, index=False, sheet_name="access_log")
        return len(frame)

    def prune_access_log(self, before: Any, *, principal: Principal = access.ADMIN) -> int:
        """Delete the rows older than ``before``; refuses a cut-off less than 183 days ago.

        Needs ``users.manage``; the pruning is itself logged. Returns how many rows went.
        """
        principal = access.principal(principal)
        access.require(principal, "users.manage")
        cutoff = to_cst(before, "before")
        latest = now_cst() - dt.timedelta(days=RETENTION_DAYS)
        if cutoff > latest:
            raise ParameterError(f"prune_access_log: before={cutoff:%Y-%m-%d} is less than {RETENTION_DAYS} days "
                                 f"ago; expected {latest:%Y-%m-%d} or earlier (the log is kept at least 6 months)")
        with self._write() as conn:
            postgres = self._paramstyle == "format"
            if postgres:
                conn.execute("GRANT DELETE ON access_log TO CURRENT_USER")
            gone = self._execute(conn, "DELETE FROM access_log WHERE at < ?", (self._to_db(cutoff),)).rowcount
            if postgres:
                conn.execute("REVOKE DELETE ON access_log FROM CURRENT_USER")
            self._log(conn, principal, "audit.prune", detail=f"before={cutoff:%Y-%m-%d}, rows={gone}")
        return int(gone)
