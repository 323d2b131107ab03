"""Bulk import of a hotline export: read the file as text, check every row, convert coordinates.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"lon": ["117.02"], "lat": ["36.66"], "category": ["环境卫生"]}, index=[2])
>>> good, bad = clean_order_rows(table)
>>> good[["lon", "lat", "category"]].values.tolist(), bad.empty
([[117.02, 36.66, '环境卫生']], True)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jngis import crs as jcrs
from jngis.codes import INPUT_CRS_NAMES, to_cst_naive
from jngis.errors import CRSError, NotFoundError, ParameterError, SchemaError
from jngis.workorders.clocks import CALENDAR, WorkCalendar
from jngis.workorders.orders import MAX_TEXT

__all__ = ["INPUT_CRS", "COLUMN_ALIASES", "read_order_table", "clean_order_rows", "crs_error"]

# How a location in each input coordinate system becomes WGS84 (None: it already is).
_TO_WGS84: dict[str, Callable[[Any, Any], tuple[Any, Any]] | None] = {
    "wgs84": None,
    "cgcs2000": None,  # equal to WGS84 at map accuracy
    "gcj02": jcrs.gcj02_to_wgs84,
    "bd09": jcrs.bd09_to_wgs84,
}
#: Coordinate systems a location may come in, and the function that turns it into WGS84.
INPUT_CRS = {name: _TO_WGS84[name] for name in INPUT_CRS_NAMES}

#: Column names accepted in a hotline export, per field (lower-cased, stripped).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "category": ("category", "type", "类别", "问题类别", "问题类型", "事项类别", "工单类型"),
    "description": ("description", "content", "text", "诉求内容", "问题描述", "内容", "描述"),
    "caller_name": ("caller_name", "name", "来电人", "来电人姓名", "姓名", "联系人"),
    "caller_phone": ("caller_phone", "phone", "tel", "来电号码", "联系电话", "电话"),
    "received_at": ("received_at", "received", "time", "受理时间", "来电时间", "登记时间"),
    "order_id": ("order_id", "id", "工单编号", "工单号", "编号"),
    "address": ("address", "地址", "事发地址", "发生地址", "事发地点", "问题地址"),
}
_REQUIRED_FIELDS = ("lon", "lat", "category")


def crs_error(crs: Any) -> CRSError:
    """The refusal of a location given in an unknown coordinate system ``crs``."""
    return CRSError(f"crs={crs!r} is not a supported input coordinate system; expected one of "
                    f"{', '.join(map(repr, INPUT_CRS))} (GCJ-02 is Amap/Tencent, BD-09 Baidu)")


# --------------------------------------------------------------------------- reading


def read_order_table(path: str | Path) -> pd.DataFrame:
    """Read a hotline export (CSV, or Excel .xlsx/.xls) as text, one column per field.

    Columns are matched by :data:`COLUMN_ALIASES` (English or Chinese
    headers); every value is kept as text for :func:`clean_order_rows`.
    The index is the spreadsheet row number (the header is row 1).
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"import: file {str(path)!r} does not exist")
    table = _read_text_table(path)
    lookup = {str(c).strip().lower(): c for c in table.columns}
    renamed = {}
    for field, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lookup and lookup[alias] not in renamed:
                renamed[lookup[alias]] = field
                break
    table = table.rename(columns=renamed)[list(renamed.values())]
    for field in _REQUIRED_FIELDS:
        if field not in table.columns and not (field in ("lon", "lat") and "address" in table.columns):
            raise SchemaError(
                f"import: {str(path)!r} has no {field} column; expected one named "
                f"{' / '.join(COLUMN_ALIASES[field])} (or an address column for lon/lat; "
                f"columns found: {list(lookup)})"
            )
    table.index = pd.RangeIndex(2, len(table) + 2, name="row")
    return table


def _read_text_table(path: Path) -> pd.DataFrame:
    """Every cell of a CSV (UTF-8, else GB18030) or Excel file as text."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
    except (ValueError, OSError) as exc:
        raise SchemaError(f"import: cannot read {str(path)!r} as a table ({exc})") from None
    raise ParameterError(f"import: file {str(path)!r} has the suffix {suffix!r}; expected .csv or .xlsx")


# --------------------------------------------------------------------------- checking


class _Reasons:
    """The first reason each row of an export is refused ("" for a good row)."""

    def __init__(self, index: pd.Index) -> None:
        self.series = pd.Series("", index=index, dtype=object)

    def flag(self, mask: Any, message: str | pd.Series) -> None:
        """Refuse the rows of ``mask`` not refused yet, for ``message`` (one text or one per row)."""
        mask = pd.Series(mask, index=self.series.index) & (self.series == "")
        self.series[mask] = message if isinstance(message, str) else message[mask]

    @property
    def good(self) -> pd.Series:
        return self.series == ""


def clean_order_rows(table: pd.DataFrame, *, crs: str = "wgs84",
                     calendar: WorkCalendar = CALENDAR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the rows of a hotline export; return ``(good, bad)``.

    ``good`` has WGS84 ``lon``/``lat`` and typed fields (``received_at`` a
    datetime, missing ones filled by the store), indexed by row number;
    ``bad`` has columns ``row`` and ``reason``. Placement (inside Jinan) is
    checked by the store.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"lon": ["117.02", "abc"], "lat": ["36.66", "36.6"],
    ...                       "category": ["环境卫生", "环境卫生"]}, index=[2, 3])
    >>> good, bad = clean_order_rows(table)
    >>> len(good), bad.reason.tolist()
    (1, ["lon 'abc' is not a number"])
    """
    if crs not in INPUT_CRS:
        raise crs_error(crs)
    blank = pd.Series("", index=table.index)
    text = {c: (table[c] if c in table.columns else blank).fillna("").astype(str).str.strip()
            for c in COLUMN_ALIASES}
    reasons = _Reasons(table.index)
    degrees = {axis: _degrees(text[axis], axis, low, high, reasons)
               for axis, low, high in (("lon", -180, 180), ("lat", -90, 90))}
    reasons.flag(text["category"] == "", "category is missing")
    reasons.flag(text["category"].str.len() > 50, "category is longer than 50 characters")
    reasons.flag(text["description"].str.len() > MAX_TEXT, f"description is longer than {MAX_TEXT} characters")
    received = _received_times(text["received_at"], reasons)
    ids = text["order_id"]
    reasons.flag((ids != "") & ids.duplicated(keep="first"), "order_id " + ids + " appears earlier in the file")
    good = reasons.good
    lon, lat = degrees["lon"][good].to_numpy(float), degrees["lat"][good].to_numpy(float)
    convert = INPUT_CRS[crs]
    if convert is not None and len(lon):
        lon, lat = convert(lon, lat)
    rows = pd.DataFrame({
        "lon": np.asarray(lon, float), "lat": np.asarray(lat, float),
        "category": text["category"][good],
        **{field: text[field][good].replace("", None) for field in ("description", "caller_name", "caller_phone")},
        "received_at": received[good].dt.floor("s"),
        "order_id": ids[good].replace("", None),
    }, index=table.index[good])
    bad = pd.DataFrame({"row": table.index[~good], "reason": reasons.series[~good].to_numpy()})
    return rows, bad


def _degrees(text: pd.Series, axis: str, low: float, high: float, reasons: _Reasons) -> pd.Series:
    """One coordinate column as numbers; a missing, unreadable or out-of-range value refuses its row."""
    values = pd.to_numeric(text, errors="coerce")
    reasons.flag(text == "", f"{axis} is missing")
    reasons.flag(values.isna(), axis + " " + text.map(repr) + " is not a number")
    reasons.flag(~values.between(low, high), axis + " " + text + f" is outside {low}..{high} degrees")
    return values


def _received_times(text: pd.Series, reasons: _Reasons) -> pd.Series:
    """``received_at`` as naive China Standard Time (NaT where not given); an unreadable one refuses its row."""
    received = pd.to_datetime(text.where(text != ""), errors="coerce", format="mixed")
    reasons.flag((text != "") & received.isna(), "received_at " + text.map(repr) + " is not a time")
    return to_cst_naive(received)
