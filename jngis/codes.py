"""The one vocabulary of jngis: administrative levels and codes, personal data, labels, norms.

Every fact that more than one module needs is written here once and imported
everywhere else (library, server, viewer through ``/config``, notebooks):

- the administrative levels, the digits of their codes and :func:`parent`;
- the work-order state groups (re-exported from :mod:`jngis.workorders`, where the
  state table lives);
- the one definition of personal data (:func:`personal_columns`,
  :data:`PHONE_PATTERN`, :data:`ID_CARD_PATTERN`);
- the Chinese labels shown to planners and officials (:data:`LABELS`,
  :data:`VALUE_LABELS`, :data:`UNITS`);
- the domain norms the defaults come from;
- China Standard Time (:func:`to_cst_naive`).

This module imports nothing from jngis but :mod:`jngis.errors`, so any module may
import it.

Examples
--------
>>> parent("370102003001002", "street")
'370102003'
>>> level_of("370102003001")
'community'
>>> personal_columns(["order_id", "caller_phone", "mobile", "身份证号"])
['caller_phone', 'mobile', '身份证号']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from jngis.errors import InputTypeError, ParameterError

__all__ = [
    "Level",
    "LEVELS",
    "LEVEL_NAMES",
    "CODE_DIGITS",
    "KEY_OF_LEVEL",
    "LEVEL_OF_KEY",
    "level",
    "level_of",
    "parent",
    "extends",
    "STATES",
    "OPEN_STATES",
    "FINISHED_STATES",
    "PERSONAL_COLUMNS",
    "PUBLIC_CONTACT_KINDS",
    "PHONE_PATTERN",
    "ID_CARD_PATTERN",
    "is_personal",
    "personal_columns",
    "INPUT_CRS_NAMES",
    "MAX_ZOOM",
    "COMMUNITY_HOUSEHOLDS",
    "GRID_HOUSEHOLDS",
    "SERVICE_AREA_M2_PER_100_HOUSEHOLDS",
    "LIFE_CIRCLE_M",
    "STAFF_COLUMNS",
    "CST",
    "to_cst_naive",
    "LABELS",
    "UNITS",
    "VALUE_LABELS",
    "LEVEL_LABELS",
    "label",
    "value_label",
    "viewer_vocabulary",
]


# --------------------------------------------------------------------------- levels and codes


class Level(NamedTuple):
    """One administrative level: its name, the key column of its layer, its code's digits."""

    name: str
    key: str
    digits: int
    layer: str
    label: str


#: The levels from the largest to the smallest; each code extends its parent's code.
LEVELS: tuple[Level, ...] = (
    Level("district", "district_code", 6, "districts", "区县"),
    Level("street", "street_code", 9, "streets", "街道"),
    Level("community", "community_code", 12, "communities", "社区"),
    Level("grid", "grid_code", 15, "grids", "网格"),
)
LEVEL_NAMES: tuple[str, ...] = tuple(lv.name for lv in LEVELS)
#: Digits of each administrative code column.
CODE_DIGITS: dict[str, int] = {lv.key: lv.digits for lv in LEVELS}
KEY_OF_LEVEL: dict[str, str] = {lv.name: lv.key for lv in LEVELS}
LEVEL_OF_KEY: dict[str, str] = {lv.key: lv.name for lv in LEVELS}
_BY_NAME = {lv.name: lv for lv in LEVELS} | {lv.key: lv for lv in LEVELS} | {lv.layer: lv for lv in LEVELS}
_BY_DIGITS = {lv.digits: lv for lv in LEVELS}


def level(name: str) -> Level:
    """The :class:`Level` called ``name`` (a level name, key column or layer name).

    Examples
    --------
    >>> level("street_code").digits
    9
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ParameterError(
            f"level={name!r}; expected one of {list(LEVEL_NAMES)} (or their key columns "
            f"{list(CODE_DIGITS)})"
        ) from None


def level_of(code: str) -> str:
    """The level name of an administrative code, by its number of digits."""
    if not isinstance(code, str) or not code.isdigit() or len(code) not in _BY_DIGITS:
        raise ParameterError(
            f"code={code!r} is not an administrative code; expected a string of "
            f"{', '.join(str(d) for d in _BY_DIGITS)} digits"
        )
    return _BY_DIGITS[len(code)].name


def parent(code: Any, to: str) -> Any:
    """The code of the ``to`` level that contains ``code`` (its prefix).

    ``code`` is one code (str) or many (a pandas Series, a numpy array or a list);
    many codes give the same kind back (a list for a list). Missing values stay
    missing. A code shorter than the level asked for raises :class:`ParameterError`.

    Examples
    --------
    >>> parent("370102003001", "district")
    '370102'
    >>> parent(pd.Series(["370102003001", None]), "street").tolist()
    ['370102003', None]
    """
    target = level(to)

    def cut(value: Any) -> Any:
        # one code: a missing value stays missing, a short code is refused by name
        if not isinstance(value, str):
            if value is None or pd.isna(value):
                return None
            value = str(value)
        if len(value) < target.digits:
            raise ParameterError(
                f"code={value!r} has fewer than the {target.digits} digits of a {target.name} code"
            )
        return value[:target.digits]

    if isinstance(code, str):
        return cut(code)
    # a plain loop: pandas' string methods cost about 1 ms of overhead even for one code
    if isinstance(code, pd.Series):
        return pd.Series([cut(v) for v in code.tolist()], index=code.index, dtype=object, name=code.name)
    if isinstance(code, np.ndarray):
        return np.array([cut(v) for v in code.tolist()], dtype=object)
    if isinstance(code, (list, tuple)):
        return [cut(v) for v in code]
    raise InputTypeError(f"code is a {type(code).__name__}; expected a code string or a Series/array/list of them")


def extends(code: Any, parent_code: Any) -> Any:
    """Whether ``code`` extends ``parent_code`` by one level's digits (vectorised over Series)."""
    if isinstance(code, pd.Series):
        mothers = parent_code if isinstance(parent_code, pd.Series) else pd.Series(parent_code, index=code.index)
        return pd.Series([extends(c, m) for c, m in zip(code, mothers)], index=code.index, dtype=bool)
    return isinstance(code, str) and isinstance(parent_code, str) and len(code) > len(parent_code) \
        and code.startswith(parent_code)


# --------------------------------------------------------------------------- work-order states

_STATE_GROUPS = ("STATES", "OPEN_STATES", "FINISHED_STATES")

if TYPE_CHECKING:  # what __getattr__ returns, for linters and type checkers
    from jngis.workorders import FINISHED_STATES, OPEN_STATES, STATES


def __getattr__(name: str) -> Any:
    # The state table lives in jngis.workorders (which imports this module); the
    # groups are re-exported lazily so that neither import waits for the other.
    if name in _STATE_GROUPS:
        from jngis import workorders

        return getattr(workorders, name)
    raise AttributeError(f"module 'jngis.codes' has no attribute {name!r}")


# --------------------------------------------------------------------------- personal data

#: Columns of work orders and residents that hold personal data (PIPL): stored only in
#: the private part of a store, never in a public layer, tile, table or feature.
PERSONAL_COLUMNS: tuple[str, ...] = (
    "caller_name", "caller_phone", "caller_address", "caller_id_number",
    "name_of_caller", "phone", "mobile", "id_number", "id_card",
)
#: Any other column whose name says it holds a person's name, phone or identity number.
_PERSONAL_NAME = re.compile(
    r"caller|phone|mobile|id_?card|id_?number|identity|身份证|电话|手机|姓名|联系人", re.IGNORECASE
)
#: Layers whose contact phones belong to a public place (a service station), not a person.
PUBLIC_CONTACT_KINDS = frozenset({"stations", "party_orgs"})
_PUBLIC_CONTACT = re.compile(r"^(phone|contact_phone|telephone|电话|联系电话)$", re.IGNORECASE)
#: A mainland mobile number (11 digits from 13x-19x), as written in a description.
PHONE_PATTERN = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
#: A resident identity card number (18 characters, the last a digit or X).
ID_CARD_PATTERN = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


def is_personal(column: Any, kind: str | None = None) -> bool:
    """Whether a column name holds personal data (in a layer of ``kind``, if given).

    A station's or party organisation's public contact phone is not personal data.
    """
    return _is_personal(str(column), kind if kind is None or isinstance(kind, str) else str(kind))


@functools.lru_cache(maxsize=4096)
def _is_personal(name: str, kind: str | None) -> bool:
    # cached: a page of orders asks this of every field of every record (a quarter of a list's time)
    if kind in PUBLIC_CONTACT_KINDS and _PUBLIC_CONTACT.match(name):
        return False
    return name in PERSONAL_COLUMNS or bool(_PERSONAL_NAME.search(name))


def personal_columns(columns: Iterable[Any], kind: str | None = None) -> list:
    """The names among ``columns`` that hold personal data, in their order."""
    return [c for c in columns if is_personal(c, kind)]


# --------------------------------------------------------------------------- CRS, zoom, norms

#: Coordinate systems a location may be given in (a work order, an import, assign's ``coords``).
INPUT_CRS_NAMES: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")
#: The deepest tile zoom served or built.
MAX_ZOOM = 24
#: Urban Residents' Committee Organization Law, Art. 3: generally 1,000-3,000 households.
COMMUNITY_HOUSEHOLDS: tuple[int, int] = (1000, 3000)
#: Common practice for urban residential grids (no national rule).
GRID_HOUSEHOLDS: tuple[int, int] = (300, 500)
#: Community service facilities: at least 30 m2 per 100 households.
SERVICE_AREA_M2_PER_100_HOUSEHOLDS = 30.0
#: GB 50180-2018 life circles: walking distance in metres.
LIFE_CIRCLE_M: dict[str, int] = {"5min": 300, "10min": 500, "15min": 1000}
#: The staffing of a grid, "1+1+N+X": grid leader, full-time worker, part-time workers, enforcement.
STAFF_COLUMNS: tuple[str, ...] = ("grid_leaders", "full_time_workers", "part_time_workers", "enforcement_officers")

# --------------------------------------------------------------------------- time

#: China Standard Time, the time of every stored and shown timestamp.
CST = "Asia/Shanghai"


def to_cst_naive(values: Any) -> Any:
    """Timestamps as naive China Standard Time: aware ones converted, naive ones kept.

    Accepts a pandas Timestamp, a datetime-like Series or a DatetimeIndex.

    Examples
    --------
    >>> to_cst_naive(pd.Timestamp("2025-10-01T02:00:00Z"))
    Timestamp('2025-10-01 10:00:00')
    """
    if isinstance(values, pd.Series):
        if getattr(values.dt, "tz", None) is not None:
            return values.dt.tz_convert(CST).dt.tz_localize(None)
        return values
    if isinstance(values, (pd.Timestamp, pd.DatetimeIndex)):
        return values.tz_convert(CST).tz_localize(None) if values.tzinfo is not None else values
    raise InputTypeError(f"values is a {type(values).__name__}; expected a Timestamp, Series or DatetimeIndex")


# --------------------------------------------------------------------------- labels

#: Chinese labels of columns shown in legends, cards, tooltips, Excel headings and the viewer.
LABELS: dict[str, str] = {
    "grid_code": "网格编码", "community_code": "社区编码", "street_code": "街道编码",
    "district_code": "区县编码", "unit_id": "单元编号", "compound_id": "小区编号", "name": "名称",
    "households": "户数", "population": "人口", "grid_type": "网格类型", "units": "单元数",
    "area_m2": "面积 (m²)", "workers_needed": "应配人员", "grid_leaders": "网格长",
    "full_time_workers": "专职网格员", "part_time_workers": "兼职网格员",
    "enforcement_officers": "执法力量", "orders": "工单总数", "open_orders": "未办结工单",
    "overdue_orders": "超期工单", "warning_orders": "临期工单", "closed_orders": "已办结工单",
    "resolved_orders": "已办结工单", "orders_30d": "近30天工单",
    "median_days_to_resolve": "办结用时中位数", "satisfaction_rate": "满意率",
    "stations": "党群服务站点", "station_area_m2": "服务站面积", "party_orgs": "党组织",
    "party_members": "党员", "members": "党员数", "status": "状态", "within_bounds": "规模达标",
    "polsby_popper": "紧凑度", "level": "级别", "kind": "类型", "from": "原社区编码",
    "to": "新社区编码", "households_before": "调整前户数", "households_after": "调整后户数",
    "households_in": "迁入户数", "households_out": "迁出户数", "partners": "关联社区",
    "distance_m": "距服务中心 (m)", "band": "距离分档", "category": "类别",
    "received_at": "受理时间", "due_at": "办理时限", "deadline": "时限状态", "order_id": "工单编号",
    "description": "诉求内容",
    # an order's details, its trail and the access log (the viewer's order panel)
    "caller_name": "来电人", "caller_phone": "来电电话", "dispatched_at": "派单时间", "warn_at": "预警时间",
    "resolved_at": "办结时间", "closed_at": "结案时间", "updated_at": "更新时间", "extended_days": "延期天数",
    "action": "操作", "from_state": "原状态", "to_state": "新状态", "who": "操作人", "at": "时间",
    "reason": "理由", "role": "角色", "scope": "范围", "principal_id": "用户编号",
    "target": "对象", "detail": "详情", "client": "来源地址",
    # the monthly evaluation (jngis.evaluation)
    "received": "受理量", "resolved": "办结量", "resolved_on_time": "按时办结量", "closed": "结案量",
    "overdue_now": "当前超期量", "returned": "退单量", "extended": "延期量", "callback": "回访量",
    "satisfied": "满意量（含基本满意）", "dissatisfied": "不满意量", "on_time_rate": "按时办结率",
    "closure_rate": "结案率", "callback_rate": "回访率", "dissatisfaction_rate": "不满意率",
    "median_hours_to_resolve": "办结用时中位数（小时）", "rank": "排名", "unit": "单位",
    "previous": "上月", "change": "环比变化", "previous_rank": "上月排名", "rank_change": "名次变化",
    "department_code": "部门编码", "department": "部门", "figures": "全部指标", "unranked": "未排名",
    # the department loop (jngis.workorders.loop, jngis.workorders.actions) and its evaluation
    "signed_on_time": "按时签收量", "sign_rate": "按时签收率", "supervised": "督办量", "rehandled": "重办量",
    "median_hours_to_sign": "签收用时中位数（小时）", "ratings": "街道评价次数", "mean_rating": "街道评价均分",
    "signed_at": "签收时间", "contacted_at": "联系时间", "on_site_at": "到场时间", "replied_at": "回复时间",
    "done_at": "办结时间", "sign_due_at": "签收时限", "contact_due_at": "联系时限",
    "supervision_due_at": "督办时限", "card": "时限牌", "note": "说明", "days": "天数（工作日）",
    "callback_level": "回访结果", "granted": "审批结果", "passed": "核查结果", "master_id": "主工单编号",
    "department_codes": "被呼部门", "rating": "评分（1-5）", "duplicates": "疑似重复工单",
}
#: Units shown after a value on the viewer's card.
UNITS: dict[str, str] = {
    "households": "户", "population": "人", "grid_leaders": "人", "full_time_workers": "人",
    "part_time_workers": "人", "enforcement_officers": "人", "workers_needed": "人", "stations": "个",
    "station_area_m2": "㎡", "party_orgs": "个", "party_members": "人", "open_orders": "件",
    "overdue_orders": "件", "warning_orders": "件", "orders_30d": "件", "orders": "件",
    "resolved_orders": "件", "closed_orders": "件", "median_days_to_resolve": "天",
    "satisfaction_rate": "%",
}
#: Chinese labels of coded values, per column.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "grid_type": {"residential": "居住网格", "dedicated": "专属网格"},
    "status": {
        # work-order states
        "received": "已受理", "dispatched": "已派单", "in_progress": "办理中", "resolved": "已办结",
        "closed": "已结案", "returned": "已退单", "signed": "已签收", "duplicate": "已并单",
        # community status in a redraw
        "kept": "不变", "adjusted": "边界调整", "split": "拆分", "merged": "合并", "new": "新设",
        "dissolved": "撤销",
    },
    "deadline": {"ok": "正常", "warning": "临期", "overdue": "超期", "met": "按时办结", "late": "超期办结"},
    "card": {"yellow": "黄牌", "red": "红牌"},
    "callback": {"satisfied": "满意", "basically_satisfied": "基本满意", "not_satisfied": "不满意"},
    # the steps of an order (its trail's action)
    "action": {
        "received": "受理", "dispatched": "派单", "in_progress": "办理", "resolved": "办结", "closed": "结案",
        "returned": "退单", "reopened": "重新办理", "extended": "延期", "sign": "签收", "contact": "联系诉求人",
        "on_site": "到场处置", "reply": "回复", "extension_request": "延期申请", "extension_decision": "延期审批",
        "supervise": "督办", "callback": "回访", "rehandle": "重办", "verify": "核查", "merge": "并单",
        "call": "街呼", "redispatch": "改派", "replaced": "重新落格",
    },
    "level": {"community": "社区级", "grid": "网格级"},
    "kind": {
        "community_centre": "社区党群服务中心", "grid_station": "网格服务站",
        "office_tower": "楼宇党群服务中心", "industrial_park": "园区党群服务中心",
        "business_district": "商圈党群服务中心",
        "community_committee": "社区党组织", "grid_branch": "网格党支部", "enterprise": "企业党组织",
    },
}
#: Chinese names of the layers and levels.
LEVEL_LABELS: dict[str, str] = {
    **{lv.layer: lv.label for lv in LEVELS}, **{lv.key: lv.label for lv in LEVELS},
    **{lv.name: lv.label for lv in LEVELS}, "units": "单元", "unit_id": "单元",
    "stations": "服务站点", "party_orgs": "党组织", "workorders": "工单",
}


def label(column: str) -> str:
    """The Chinese label of a column, or the column's own name when it has none."""
    return LABELS.get(column, column)


def value_label(column: str, value: Any) -> Any:
    """The Chinese label of a coded value, or the value itself when it has none."""
    return VALUE_LABELS.get(column, {}).get(value, value) if isinstance(value, str) else value


def viewer_vocabulary() -> dict[str, Any]:
    """Labels, units, value labels, levels, work-order states and personal fields as plain JSON
    for the web viewer (``/layers``)."""
    from jngis.workorders.states import OPEN_STATES, STATES

    return {
        "labels": dict(LABELS),
        "units": dict(UNITS),
        "values": {k: dict(v) for k, v in VALUE_LABELS.items()},
        "levels": [lv._asdict() for lv in LEVELS],
        "level_labels": dict(LEVEL_LABELS),
        "states": list(STATES),
        "open_states": list(OPEN_STATES),
        "personal": list(PERSONAL_COLUMNS),
    }
