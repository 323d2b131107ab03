"""Addresses for the sample city's units, and the noisy ways people write them.

:func:`sample_addresses` gives every unit a standard address, deterministically
from the units and a seed: each 街道 has its own roads (k-means strips of its
units, each road's door numbers increasing along its main axis, odd or even),
units along a road share a door number in groups (a compound 小区/花园/新村
with buildings 1号楼, 2号楼 ... or a single building), gated compounds of the
units layer (``compound_id``) keep one door and one name, a few roads carry
their old name and a few compounds an alias (the ``aliases`` column), and a
few compound names repeat in another 街道, as they do in a real city.

:func:`noisy_variants` writes those addresses the ways callers and exports do
(see :data:`VARIANT_KINDS`), for the tests and benchmarks/address.py.
"""

from __future__ import annotations

import cn2an
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2

from jngis import _checks, codes

__all__ = ["sample_addresses", "standard_address", "noisy_variants", "VARIANT_KINDS", "JINAN_PREFIXES"]

#: The province and city the sample's addresses may start with.
JINAN_PREFIXES = ("山东省", "济南市")

#: How :func:`noisy_variants` writes an address.
VARIANT_KINDS = (
    "standard",          # 历下区文化东路68号山大新村3号楼
    "with_prefix",       # 山东省济南市历下区 文化东路 68号 ...
    "no_district",       # 文化东路68号山大新村3号楼
    "chinese_numerals",  # 文化东路六十八号山大新村三号楼
    "building_word",     # 文化东路68号院山大新村3栋 / 3幢 / 3座
    "full_width",        # 文化东路６８号山大新村３号楼
    "typo",              # 文华东路68号山大新村3号楼 (one homophone in the road or compound)
    "old_road_name",     # the renamed road's old name
    "compound_only",     # 山大新村三号楼二单元
    "dashed",            # 文化东路68号3-2-302
)

_ROAD_STEMS = (
    "文化 解放 和平 泉城 历山 山大 花园 工业 舜耕 英雄 千佛 燕山 明湖 趵突 泺源 黑虎 旅游 华山 华信 将军 "
    "北园 堤口 济泺 无影 清河 标山 生产 师范 工人 青年 建设 胜利 民生 富民 兴隆 长盛 东城 西城 南辛 北坦 "
    "丁家 王舍 张庄 刘长 杨柳 柳埠 洪楼 山师 百花 玉函 七里 十里 营市 纬北 经华 济齐 齐鲁 泰山 黄河 "
    "小清 卧牛 鹊华 匡山 药山 蓝翔 凤凰 龙鼎 奥体 飞跃 开拓 创新 科航 新泺 转山 姚家 燕子 祥云 仁和 "
    "康虹 宝华 金鸡 银座 鲁能 龙奥 汇源 浆水 大观 共青 顺河 少年 顺安 安康 永安 长安 平安 文庄 崇华 "
    "学府 书院 状元 恒泰 丰收 华阳 锦屏 金牛 玉泉 清源 荷花 桃园 梨园 杏林 松岗 柏石 榆林 槐荫 银河"
).split()
_COMPOUND_STEMS = (
    "阳光 幸福 和谐 翠苑 绿景 万科 鲁商 中海 绿地 恒大 保利 龙湖 华润 融创 万达 泉景 山水 水岸 名士 "
    "丽都 锦绣 金域 御园 雅居 书香 颐和 康乐 盛世 东方 明珠 紫薇 海棠 玉兰 丁香 银杏 梧桐 香榭 枫林 "
    "佛山 舜华 舜玉 燕子 甸柳 燕翔 环山 花园 工人 电建 铁路 邮电 电力 机床 钢厂 纺织 化纤 轻骑 山大 "
    "山师 省府 市委 教育 卫生 粮食 交通 水利 林业 农科 气象 地矿 二机 三箭 鲁能 茂岭 浆水 青龙 白马"
).split()
_COMPOUND_SUFFIXES = ("小区", "花园", "新村", "家园", "苑", "公寓", "宿舍", "佳苑", "名居", "嘉园")
_ROAD_SUFFIXES_EW = ("路", "东路", "西路", "大街", "中路")
_ROAD_SUFFIXES_NS = ("街", "南路", "北路", "大道", "南街")
# Characters callers often swap for one that sounds alike (同音字).
_GROUP_SIZES = (1, 1, 2, 3, 4, 5, 6)
_DOOR_STEPS = (1, 1, 1, 2, 3)
_HOMOPHONES: dict[str, str] = dict((pairs[0], pairs[1]) for pairs in (
    "文闻 化华 华化 解介 和河 平萍 城程 历立 山删 花华 园源 工公 舜顺 英鹰 燕雁 明名 泉全 源园 虎湖 旅吕 "
    "信新 将江 北背 清青 标彪 生声 师诗 人仁 青清 年念 建健 设社 胜圣 民明 富福 兴星 隆龙 长常 盛胜 "
    "东冬 西希 南楠 阳杨 光广 幸兴 福富 谐鞋 翠脆 苑院 绿律 景井 中钟 海海 利力 湖虎 润闰 达大 丽力 "
    "都督 锦金 绣秀 金今 域玉 御玉 雅亚 居局 书抒 香湘 颐怡 康糠 乐勒 世市 方芳 珠朱 玉欲 兰蓝 家佳 "
    "新欣 村春 庄装 坦谈 宿素 公工 佳家 嘉佳 路鹿 街阶 道到 大达 区曲"
).split())


def _unique_names(rng: np.random.Generator, n: int, stems, suffixes, taken: set[str],
                  road: bool = True) -> list[str]:
    names: list[str] = []
    long_share = 0.25 if road else 0.5
    while len(names) < n:
        a, b, c = rng.integers(len(stems), size=2).tolist() + [int(rng.integers(len(suffixes)))]
        name = stems[a] + suffixes[c]
        if rng.random() < long_share:  # a longer name now and then: 英雄山路, 阳光幸福苑
            name = (stems[b][0] if road else stems[b]) + name
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _street_roads(xy: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray], list[bool]]:
    """Road label per unit, each road's position of its units along it, and whether it runs east-west."""
    k = int(np.clip(round(len(xy) / 45), 1, 12))
    if k > 1:
        _, labels = kmeans2(xy, k, seed=int(rng.integers(2**31)), minit="++")
    else:
        labels = np.zeros(len(xy), dtype=int)
    along, east_west = [], []
    for road in range(k):
        pts = xy[labels == road]
        centred = pts - pts.mean(axis=0) if len(pts) else pts
        axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(pts) > 1 else np.array([1.0, 0.0])
        axis = axis if axis[0] + axis[1] >= 0 else -axis  # numbers grow west -> east or south -> north
        along.append(centred @ axis if len(pts) else np.zeros(0))
        east_west.append(bool(abs(axis[0]) >= abs(axis[1])))
    return labels, along, east_west


def _door_groups(members: np.ndarray, t: np.ndarray, compounds: np.ndarray,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Units of one road in door groups along it: each gated compound is one group."""
    order = np.argsort(t, kind="stable")
    groups: list[list[int]] = []
    seen: dict[object, int] = {}
    pending: list[int] = []
    size = _GROUP_SIZES[int(rng.integers(len(_GROUP_SIZES)))]
    for i in order:
        cid = compounds[members[i]]  # members: the road's unit rows
        if isinstance(cid, str):
            if cid in seen:
                groups[seen[cid]].append(members[i])
            else:
                seen[cid] = len(groups)
                groups.append([members[i]])
            continue
        pending.append(members[i])
        if len(pending) >= size:
            groups.append(pending)
            pending, size = [], _GROUP_SIZES[int(rng.integers(len(_GROUP_SIZES)))]
    if pending:
        groups.append(pending)
    return [np.array(g) for g in groups]


def sample_addresses(units, *, districts=None, seed: int = 2026) -> pd.DataFrame:  # noqa: C901 - one pass per 街道
    """A standard address for every unit of the sample city (deterministic for a seed).

    Parameters
    ----------
    units : GeoDataFrame
        The units layer (``unit_id``, ``street_code``, geometry in metres; ``compound_id`` optional).
    districts : GeoDataFrame, optional
        Gives the district names written at the start of each address.
    seed : int
        Seed of the generator.

    Returns
    -------
    DataFrame
        Aligned with ``units``: ``road``, ``door_number``, ``compound_name`` (or NA),
        ``building`` (or NA: the only building at its door), ``aliases`` (``|``-separated
        old addresses ``府前街12号`` and compound aliases, or NA), ``district`` and ``address``.

    Examples
    --------
    >>> import jngis
    >>> city = jngis.load_sample()
    >>> addr = sample_addresses(city.units, districts=city.districts)
    >>> bool(addr["address"].is_unique), bool(addr["door_number"].gt(0).all())
    (True, True)
    """
    func = "sample_addresses"
    _checks.geodataframe(func, "units", units, required=["unit_id", "street_code"], metric=True)
    seed = _checks.integer(func, "seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    n = len(units)
    xy = shapely.get_coordinates(units.geometry.representative_point().values)
    compounds = (units["compound_id"].to_numpy(dtype=object) if "compound_id" in units.columns
                 else np.full(n, None, dtype=object))
    road = np.empty(n, dtype=object)
    door = np.zeros(n, dtype=np.int64)
    compound = np.full(n, None, dtype=object)
    building = np.full(n, -1, dtype=np.int64)
    aliases = np.full(n, None, dtype=object)
    road_names: set[str] = set()
    compound_names: set[str] = set()
    street_codes = units["street_code"].to_numpy(dtype=object)
    used_by_street: list[str] = []
    for street in sorted(set(street_codes)):
        in_street = np.flatnonzero(street_codes == street)
        labels, along, east_west = _street_roads(xy[in_street], rng)
        for r, (t, ew) in enumerate(zip(along, east_west)):
            members = in_street[labels == r]
            if not len(members):
                continue
            suffixes = _ROAD_SUFFIXES_EW if ew else _ROAD_SUFFIXES_NS
            name = _unique_names(rng, 1, _ROAD_STEMS, suffixes, road_names)[0]
            old = _unique_names(rng, 1, _ROAD_STEMS, suffixes, road_names)[0] if rng.random() < 0.12 else None
            number = int(rng.integers(1, 3))
            for group in _door_groups(members, t, compounds, rng):
                road[group], door[group] = name, number
                if old is not None:
                    aliases[group] = f"{old}{number}号"
                number += 2 * _DOOR_STEPS[int(rng.integers(len(_DOOR_STEPS)))]
                if len(group) > 1:
                    building[group] = np.arange(1, len(group) + 1)
                if (len(group) > 1 and rng.random() < 0.75) or isinstance(compounds[group[0]], str):
                    if used_by_street and rng.random() < 0.02:  # the same name in another 街道
                        cname = str(rng.choice(used_by_street))
                    else:
                        cname = _unique_names(rng, 1, _COMPOUND_STEMS, _COMPOUND_SUFFIXES, compound_names,
                                                     road=False)[0]
                    compound[group] = cname
                    if len(group) > 1 and rng.random() < 0.05:
                        alias = _unique_names(rng, 1, _COMPOUND_STEMS, ("宿舍", "大院"), compound_names, road=False)[0]
                        aliases[group] = "|".join(a for a in (aliases[group[0]], alias) if a)
        used_by_street.extend(sorted({c for c in compound[in_street] if c}))
    out = pd.DataFrame({"road": road, "door_number": door, "compound_name": compound,
                        "building": pd.array(np.where(building > 0, building, 0), dtype="Int64"),
                        "aliases": aliases}, index=units.index)
    out.loc[building <= 0, "building"] = pd.NA
    names = {}
    if districts is not None:
        names = dict(zip(districts["district_code"], districts["name"]))
    out["district"] = [names.get(codes.parent(str(s), "district"), "") for s in street_codes]
    out["address"] = [standard_address(*row) for row in zip(out["district"], road, door, compound, out["building"])]
    return out


def standard_address(district, road, door, compound, building) -> str:
    """``历下区文化东路68号山大新村3号楼`` from its parts (NA parts left out).

    >>> standard_address("历下区", "文化东路", 68, "山大新村", 3)
    '历下区文化东路68号山大新村3号楼'
    """
    text = f"{district or ''}{road}{int(door)}号"
    if isinstance(compound, str) and compound:
        text += compound
    if building is not None and not pd.isna(building):
        text += f"{int(building)}号楼"
    return text


_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _typo(name: str, rng: np.random.Generator) -> str | None:
    spots = [i for i, ch in enumerate(name[:-1]) if ch in _HOMOPHONES]  # keep the 路/街 word
    if not spots:
        return None
    i = int(rng.choice(spots))
    return name[:i] + _HOMOPHONES[name[i]] + name[i + 1:]


def _variant(kind: str, parts: dict, rng: np.random.Generator) -> str | None:
    d, road, door, comp, bld, alias_road = (parts[k] for k in ("district", "road", "door", "compound",
                                                                "building", "old_road"))
    has_comp, has_bld = isinstance(comp, str), bld is not None
    tail = (comp if has_comp else "") + (f"{bld}号楼" if has_bld else "")
    if kind == "standard":
        return standard_address(d, road, door, comp, bld)
    if kind == "with_prefix":
        return f"山东省济南市{d} {road} {door}号 {tail}".strip()
    if kind == "no_district":
        return f"{road}{door}号{tail}"
    if kind == "chinese_numerals":
        return (f"{road}{cn2an.an2cn(door)}号" + (comp if has_comp else "")
                + (f"{cn2an.an2cn(bld)}号楼" if has_bld else ""))
    if kind == "building_word":
        word = str(rng.choice(["栋", "幢", "座", "号楼"]))
        return f"{d}{road}{door}号{'院' if has_bld else ''}" + (comp if has_comp else "") + (
            f"{bld}{word}" if has_bld else "")
    if kind == "full_width":
        return f"{road}{door}号{tail}".translate(_FULL_WIDTH)
    if kind == "typo":
        if has_comp and rng.random() < 0.5 and (typo := _typo(comp, rng)):
            return f"{road}{door}号{typo}" + (f"{bld}号楼" if has_bld else "")
        typo = _typo(road, rng)
        return None if typo is None else f"{d}{typo}{door}号{tail}"
    if kind == "old_road_name":
        return None if alias_road is None else f"{alias_road}{tail}"
    if kind == "compound_only":
        if not (has_comp and has_bld):
            return None
        return f"{comp}{cn2an.an2cn(bld)}号楼{cn2an.an2cn(int(rng.integers(1, 5)))}单元"
    if kind == "dashed":
        if not has_bld:
            return None
        entrance, floor, flat = (int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 4)))
        return f"{road}{door}号{bld}-{entrance}-{floor}0{flat}"
    raise ValueError(kind)


def noisy_variants(units, addresses: pd.DataFrame, *, kinds=VARIANT_KINDS, n: int | None = None,
                   seed: int = 7) -> pd.DataFrame:
    """The addresses of (a sample of ``n``) units written each of the ways in ``kinds``.

    Returns a DataFrame ``unit_id``, ``kind``, ``text``; a kind that does not apply
    to a unit (no compound, no old road name) gives no row for it.

    Examples
    --------
    >>> import jngis
    >>> city = jngis.load_sample()
    >>> addr = sample_addresses(city.units, districts=city.districts)
    >>> v = noisy_variants(city.units, addr, n=200)
    >>> sorted(set(v["kind"])) == sorted(VARIANT_KINDS)
    True
    """
    func = "noisy_variants"
    _checks.dataframe(func, "units", units)
    _checks.columns(func, "addresses", addresses, ["district", "road", "door_number", "compound_name",
                                                    "building", "aliases"])
    for kind in kinds:
        _checks.choice(func, "kinds", kind, VARIANT_KINDS)
    rng = np.random.default_rng(_checks.integer(func, "seed", seed, minimum=0))
    rows = np.arange(len(units))
    if n is not None and _checks.integer(func, "n", n, minimum=1) < len(rows):
        rows = np.sort(rng.choice(rows, size=n, replace=False))
    out = []
    ids = units["unit_id"].to_numpy()
    for i in rows:
        a = addresses.iloc[i]
        old = next((x for x in str(a["aliases"]).split("|") if x.endswith("号")), None) if isinstance(
            a["aliases"], str) else None
        parts = {"district": a["district"], "road": a["road"], "door": int(a["door_number"]),
                 "compound": a["compound_name"], "building": None if pd.isna(a["building"]) else int(a["building"]),
                 "old_road": old}
        for kind in kinds:
            text = _variant(kind, parts, rng)
            if text is not None:
                out.append((ids[i], kind, text))
    return pd.DataFrame(out, columns=["unit_id", "kind", "text"])
