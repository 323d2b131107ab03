"""Departments that handle work orders, and the dispatch catalogue that routes orders to them.

The **registry** is a table with one row per department: ``code``, ``name``,
``kind`` (one of :data:`DEPARTMENT_KINDS`: a district department, a city
department or a utility) and ``districts``, the 6-digit district codes it
serves (a tuple). The **dispatch catalogue** says which department an order of
a category in a district goes to by default: columns ``category``,
``district_code``, ``department_code``, one row per (category, district) pair.
Both are editable as tables (CSV or Excel) and checked on reading: a refusal
is a :class:`~jngis.errors.SchemaError` naming the file, the row (1 = the first
data row) and the column.

Examples
--------
>>> import pandas as pd
>>> districts = pd.DataFrame({"district_code": ["370102"], "name": ["历下区"]})
>>> registry = sample_departments(districts)
>>> registry.set_index("code").loc["370102-CG", "name"]
'历下区城市管理局'
>>> dispatch(sample_catalogue(registry), "环境卫生", "370102")
'370102-CG'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from jngis import _checks
from jngis.codes import CODE_DIGITS
from jngis.errors import NotFoundError, ParameterError, SchemaError

__all__ = [
    "DEPARTMENT_KINDS",
    "DEPARTMENT_COLUMNS",
    "CATALOGUE_COLUMNS",
    "check_departments",
    "check_catalogue",
    "read_departments",
    "read_catalogue",
    "sample_departments",
    "sample_catalogue",
    "dispatch",
    "departments_of",
]

#: kind -> Chinese label.
DEPARTMENT_KINDS: dict[str, str] = {"district": "区县部门", "city": "市直部门", "utility": "公用企业"}
DEPARTMENT_COLUMNS = ("code", "name", "kind", "districts")
CATALOGUE_COLUMNS = ("category", "district_code", "department_code")
_DISTRICT_DIGITS = CODE_DIGITS["district_code"]

# The sample city's departments: (suffix, name after the district's name) per district ...
_DISTRICT_DEPARTMENTS = (
    ("CG", "城市管理局"), ("ZJ", "住房和城乡建设局"), ("SJ", "市场监督管理局"),
    ("GA", "公安分局"), ("ST", "生态环境分局"), ("SF", "司法局"), ("ZF", "人民政府办公室"),
)
# ... the city departments and utilities (code, name, kind, districts served or None = all) ...
_CITY_DEPARTMENTS = (
    ("3701-SZ", "济南市市政公用事业服务中心", "city", None),
    ("3701-JJ", "济南市公安局交通警察支队", "city", None),
    ("U-RL", "济南热力集团有限公司", "utility", ("370102", "370103", "370104", "370105", "370112", "370113")),
    ("U-LWRL", "莱芜热力有限公司", "utility", ("370116", "370117")),
    ("U-ZQRL", "章丘区热力公司", "utility", ("370114",)),
    ("U-RQ", "济南港华燃气有限公司", "utility", None),
)
# ... and the default department of each category of the sample's orders (suffix or code).
_CATEGORY_DEPARTMENT = {
    "环境卫生": "CG", "违章建筑": "CG", "物业管理": "ZJ", "市场监管": "SJ", "治安隐患": "GA",
    "噪音扰民": "ST", "邻里纠纷": "SF", "其他事项": "ZF", "市政设施": "3701-SZ", "道路交通": "3701-JJ",
    "供水供暖": "heating",  # the district's heat utility, else its housing bureau
}


def sample_departments(districts: pd.DataFrame) -> pd.DataFrame:
    """Realistic departments for the sample city: seven per district, city departments, utilities.

    ``districts`` needs ``district_code`` and ``name`` (e.g. ``load_sample().districts``).

    Examples
    --------
    >>> import pandas as pd
    >>> registry = sample_departments(pd.DataFrame({"district_code": ["370102"], "name": ["历下区"]}))
    >>> sorted(registry["kind"].unique())
    ['city', 'district', 'utility']
    """
    _checks.dataframe("sample_departments", "districts", districts)
    _checks.columns("sample_departments", "districts", districts, ["district_code", "name"])
    codes = districts["district_code"].astype(str).tolist()
    rows: list[tuple[str, str, str, tuple[str, ...]]] = [(f"{code}-{suffix}", f"{name}{what}", "district", (code,))
            for code, name in zip(codes, districts["name"].astype(str)) for suffix, what in _DISTRICT_DEPARTMENTS]
    for code, name, kind, served in _CITY_DEPARTMENTS:
        serving = tuple(codes) if served is None else tuple(c for c in served if c in codes)
        if serving:  # a utility of districts the caller did not give is left out
            rows.append((code, name, kind, serving))
    return check_departments(pd.DataFrame(rows, columns=list(DEPARTMENT_COLUMNS)))


def sample_catalogue(departments: pd.DataFrame, categories: Iterable[str] | None = None) -> pd.DataFrame:
    """The dispatch catalogue of the sample city: every category in every district the registry knows.

    Examples
    --------
    >>> import pandas as pd
    >>> registry = sample_departments(pd.DataFrame({"district_code": ["370126"], "name": ["商河县"]}))
    >>> dispatch(sample_catalogue(registry), "供水供暖", "370126")  # no heat utility there
    '370126-ZJ'
    """
    departments = check_departments(departments)
    wanted = list(_CATEGORY_DEPARTMENT) if categories is None else list(categories)
    unknown = [c for c in wanted if c not in _CATEGORY_DEPARTMENT]
    if unknown:
        raise ParameterError(f"sample_catalogue: categories={unknown!r} are not the sample's; expected some of "
                             f"{list(_CATEGORY_DEPARTMENT)}")
    known = set(departments["code"])
    heat = {d: code for code, served in zip(departments["code"], departments["districts"])
            if code.startswith("U-") and code.endswith("RL") for d in served}
    districts = sorted({d for served in departments["districts"] for d in served})
    rows = []
    for category in wanted:
        target = _CATEGORY_DEPARTMENT[category]
        for district in districts:
            if target == "heating":
                code = heat.get(district, f"{district}-ZJ")
            else:
                code = target if target.startswith("3701") else f"{district}-{target}"
            if code in known:
                rows.append((category, district, code))
    return check_catalogue(pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS)), departments)


# --------------------------------------------------------------------------- checks


def _row_error(source: str, row: int, column: str, value: Any, expected: str) -> SchemaError:
    return SchemaError(f"{source}: row {row + 1}, column {column!r} is {value!r}; expected {expected}")


def _districts_tuple(source: str, row: int, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.replace("；", ";").replace(",", ";").split(";") if v.strip()]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = [str(v).strip() for v in value]
    else:
        raise _row_error(source, row, "districts", value, "district codes separated by ';'")
    bad = [v for v in items if not (v.isdigit() and len(v) == _DISTRICT_DIGITS)]
    if not items or bad:
        raise _row_error(source, row, "districts", value,
                         f"one or more {_DISTRICT_DIGITS}-digit district codes separated by ';'")
    return tuple(items)


def check_departments(departments: Any, *, source: str = "departments") -> pd.DataFrame:
    """The registry checked and normalised (``districts`` as tuples of codes).

    Examples
    --------
    >>> import pandas as pd
    >>> check_departments(pd.DataFrame({"code": ["X"], "name": ["某局"], "kind": ["bureau"],
    ...                                 "districts": ["370102"]}))
    Traceback (most recent call last):
    ...
    jngis.errors.SchemaError: departments: row 1, column 'kind' is 'bureau'; expected one of ['district', 'city', 'utility']
    """
    _checks.dataframe("check_departments", source, departments)
    _checks.columns("check_departments", source, departments, DEPARTMENT_COLUMNS)
    seen: dict[str, int] = {}
    rows = []
    for row, (code, name, kind, served) in enumerate(departments[list(DEPARTMENT_COLUMNS)].itertuples(index=False)):
        if not isinstance(code, str) or not code.strip():
            raise _row_error(source, row, "code", code, "a non-empty department code")
        if code in seen:
            raise _row_error(source, row, "code", code, f"a code not used before (row {seen[code] + 1} has it)")
        seen[code] = row
        if not isinstance(name, str) or not name.strip():
            raise _row_error(source, row, "name", name, "the department's name")
        if kind not in DEPARTMENT_KINDS:
            raise _row_error(source, row, "kind", kind, f"one of {list(DEPARTMENT_KINDS)}")
        rows.append((code.strip(), name.strip(), kind, _districts_tuple(source, row, served)))
    return pd.DataFrame(rows, columns=list(DEPARTMENT_COLUMNS))


def check_catalogue(catalogue: Any, departments: pd.DataFrame, *, source: str = "catalogue") -> pd.DataFrame:
    """The catalogue checked against the registry: one row per (category, district), a department
    that exists and serves that district.

    Examples
    --------
    >>> import pandas as pd
    >>> registry = sample_departments(pd.DataFrame({"district_code": ["370102"], "name": ["历下区"]}))
    >>> check_catalogue(pd.DataFrame({"category": ["环境卫生"], "district_code": ["370102"],
    ...                               "department_code": ["370103-CG"]}), registry)
    Traceback (most recent call last):
    ...
    jngis.errors.SchemaError: catalogue: row 1, column 'department_code' is '370103-CG'; expected a department of the registry
    """
    _checks.dataframe("check_catalogue", source, catalogue)
    _checks.columns("check_catalogue", source, catalogue, CATALOGUE_COLUMNS)
    served = dict(zip(departments["code"], departments["districts"]))
    seen: dict[tuple[str, str], int] = {}
    rows = []
    for row, (category, district, code) in enumerate(catalogue[list(CATALOGUE_COLUMNS)].itertuples(index=False)):
        if not isinstance(category, str) or not category.strip():
            raise _row_error(source, row, "category", category, "a category name")
        district = str(district).strip() if district is not None else ""
        if not (district.isdigit() and len(district) == _DISTRICT_DIGITS):
            raise _row_error(source, row, "district_code", district, f"a {_DISTRICT_DIGITS}-digit district code")
        if code not in served:
            raise _row_error(source, row, "department_code", code, "a department of the registry")
        if district not in served[code]:
            raise _row_error(source, row, "department_code", code,
                             f"a department serving district {district} (it serves {list(served[code])})")
        key = (category.strip(), district)
        if key in seen:
            raise _row_error(source, row, "category", category,
                             f"one row per (category, district); row {seen[key] + 1} has {key}")
        seen[key] = row
        rows.append((*key, code))
    return pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS))


# --------------------------------------------------------------------------- files


def _read_table(func: str, path: Any) -> pd.DataFrame:
    _checks.instance(func, "path", path, (str, os.PathLike), "a path to a .csv or .xlsx file")
    text = os.fspath(path)
    if not os.path.exists(text):
        raise NotFoundError(f"{func}: path={text!r} does not exist; expected a .csv or .xlsx file")
    suffix = os.path.splitext(text)[1].lower()
    if suffix == ".csv":
        return pd.read_csv(text, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if suffix in (".xlsx", ".xlsm"):
        return pd.read_excel(text, dtype=str, keep_default_na=False, engine="openpyxl")
    raise ParameterError(f"{func}: path={text!r} has suffix {suffix!r}; expected .csv or .xlsx")


def read_departments(path: Any) -> pd.DataFrame:
    """The registry from a CSV or Excel file (``districts`` as codes separated by ``;``), checked."""
    return check_departments(_read_table("read_departments", path), source=os.fspath(path))


def read_catalogue(path: Any, departments: pd.DataFrame) -> pd.DataFrame:
    """The dispatch catalogue from a CSV or Excel file, checked against ``departments``."""
    return check_catalogue(_read_table("read_catalogue", path), departments, source=os.fspath(path))


# --------------------------------------------------------------------------- lookup


def dispatch(catalogue: pd.DataFrame, category: str, district_code: str) -> str:
    """The default department of an order of ``category`` in ``district_code``."""
    hit = catalogue.loc[(catalogue["category"] == category) & (catalogue["district_code"] == district_code),
                        "department_code"]
    if hit.empty:
        raise NotFoundError(f"dispatch: no department for category={category!r} in district_code="
                            f"{district_code!r}; expected a (category, district) pair of the catalogue")
    return str(hit.iloc[0])


def departments_of(categories: Any, district_codes: Any, catalogue: pd.DataFrame, *,
                   func: str = "departments_of") -> np.ndarray:
    """The catalogue's department for each (category, district) pair (vectorised);
    :class:`~jngis.errors.NotFoundError` naming the pairs the catalogue lacks."""
    keys = pd.MultiIndex.from_arrays([np.asarray(categories, dtype=object), np.asarray(district_codes, dtype=object)])
    table = pd.Series(catalogue["department_code"].to_numpy(object),
                      index=pd.MultiIndex.from_frame(catalogue[["category", "district_code"]]))
    found = table.reindex(keys).to_numpy(object)
    missing = pd.isna(found)
    if missing.any():
        pairs = sorted(set(keys[missing].tolist()))
        raise NotFoundError(f"{func}: the catalogue has no department for {len(pairs)} (category, district) "
                            f"pair(s), e.g. {pairs[:3]}; expected a row for each")
    return found
