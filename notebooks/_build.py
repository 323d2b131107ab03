"""Write the planner notebooks (without outputs) from the cell lists below.

Run ``python notebooks/_build.py`` after editing a cell here; never edit the
.ipynb files by hand (they are generated and committed without outputs, and
tests/test_notebooks.py executes them).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
%matplotlib inline
from pathlib import Path

import pandas as pd

import jngis
from jngis.viz import grid_map

OUT = Path("output")  # files written by this notebook (not committed)
OUT.mkdir(exist_ok=True)
pd.set_option("display.max_columns", 20)'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["01_sample_city.ipynb"] = [
    ("md", """\
# 01 济南示例城市 · The sample city

本笔记本带您认识 jngis 的示例数据：济南市 12 个区县、132 个街道、850 个社区、约 4 万个居民楼栋单元，
以及服务站点、网格党组织和 12345 热线工单。示例中的区县轮廓是真实的，其余细节为生成数据。

You will: load the sample city, validate every layer, walk the hierarchy
district → 街道 → community → grid, look at community sizes against the legal
band of 1,000–3,000 households, and draw a map.

To use your own data instead, replace `jngis.load_sample()` by `jngis.read_city("your_city.gpkg")`
(a GeoPackage with one layer per kind: districts, streets, communities, units, stations, party_orgs, workorders)."""),
    ("code", SETUP),
    ("md", """\
## 1. 读取并校验 · Load and validate

`load_sample()` builds the sample once (about 20 s) and then reads it from the cache. `city.validate()`
checks every layer against its schema (codes, columns, geometry, CRS) and raises an error that names the
layer, the column and the rows when something is wrong."""),
    ("code", """\
city = jngis.load_sample()
city.validate()
city"""),
    ("code", """\
print("\\n".join(city.summary()))"""),
    ("md", """\
## 2. 层级关系 · The hierarchy

Codes are nested: district 6 digits (GB/T 2260), 街道 9, community 12, grid 15. The table counts, per
district, the 街道, communities, units and households. Grids do not exist yet in the sample: notebook 03
draws them."""),
    ("code", """\
units = city.units
hierarchy = pd.DataFrame({
    "街道 streets": city.streets.groupby("district_code").size(),
    "社区 communities": city.communities.groupby(city.communities["street_code"].str[:6]).size(),
    "单元 units": units.groupby(units["street_code"].str[:6]).size(),
    "户数 households": units.groupby(units["street_code"].str[:6])["households"].sum(),
})
hierarchy.index = city.districts.set_index("district_code").loc[hierarchy.index, "name"] + " " + hierarchy.index
hierarchy.loc["合计 total"] = hierarchy.sum()
hierarchy"""),
    ("md", """\
## 3. 社区规模 · Community sizes

《城市居民委员会组织法》第三条：居民委员会一般在一千户至三千户的范围内设立。
The figure shows how many communities fall below or above that band today."""),
    ("code", """\
from jngis.viz import size_figure

households = city.households_by("communities")
print(f"{(households < 1000).sum()} communities below 1,000 households, {(households > 3000).sum()} above 3,000")
size_figure(households.to_numpy(), min_households=1000, max_households=3000)"""),
    ("md", """\
## 4. 地图 · A map of one district

历下区 (370102): communities coloured by households, with the service stations and the party
organisations as clustered markers (click a cluster to zoom in, a marker for its card); the 街道 outlines
and the names of the 街道 (`names=city.streets`) and communities are written on the map. The layer
control (top right) switches layers on and off."""),
    ("code", """\
district = "370102"
communities = city.communities[city.communities["community_code"].str.startswith(district)]
area = communities.union_all()
stations = city.stations[city.stations.intersects(area)]
party_orgs = city.party_orgs[city.party_orgs.intersects(area)]
m = grid_map(communities, households, column="households", stations=stations, party_orgs=party_orgs,
             names=city.streets, title="历下区 社区户数")
m.save(OUT / "01_lixia_communities.html")
m"""),
    ("md", """\
### 底图 · Base maps

地图默认不加底图：区县、街道、社区的边界和名称直接由数据绘制，地图所需的脚本都已内嵌在页面中，
在没有互联网的政务内网也能打开，保存的 HTML 文件可以直接发给他人离线查看。

需要底图时：
- **天地图**（国家地理信息公共服务平台，CGCS2000，与 WGS84 无偏移）：在天地图开发者控制台
  (console.tianditu.gov.cn) 申请“浏览器端”密钥 (tk)，然后 `grid_map(..., tiles=tianditu(tk="您的密钥"))`；
  `tianditu(tk, "img")` 为影像底图。下面的单元格从环境变量 `TIANDITU_TK` 读取密钥，未设置时不加底图。
- **地图服务器**：`server_url="http://127.0.0.1:8000"` 叠加 `jngis serve` 的矢量瓦片边界与名称
  （启动服务器时设置 `JNGIS_CORS_ORIGINS=*`，以便笔记本页面读取）。
- 任何 XYZ 瓦片地址（例如本市内网的瓦片服务）：`tiles="https://.../{z}/{x}/{y}.png"`。
- 高德、腾讯地图为 GCJ-02 坐标，与数据相差 500–900 米：jngis 会先把数据转换为 GCJ-02 再绘制并给出警告，
  不会混用；百度 (BD-09) 不支持。

No base map by default (works offline); Tianditu with your key, the map server's tiles, or any XYZ URL on
request."""),
    ("code", """\
import os

from jngis.viz import tianditu

key = os.environ.get("TIANDITU_TK")  # 天地图密钥 your Tianditu key
if key:
    m = grid_map(communities, households, column="households", names=city.streets, tiles=tianditu(key),
                 title="历下区 社区户数 (天地图)")
    m.save(OUT / "01_lixia_tianditu.html")
    display(m)
else:
    print("未设置 TIANDITU_TK: 地图不加底图 (no base map; set TIANDITU_TK to your Tianditu key to add one)")"""),
    ("md", """\
## 5. 全市网格级地图需要地图服务器 · The whole city at block or grid level

Drawing tens of thousands of polygons inside a notebook makes the browser crawl, so `grid_map` refuses and
says how to do it: start the map server (`jngis serve`) and pass `server_url=`; the polygons then come as
vector tiles."""),
    ("code", """\
try:
    grid_map(city.units, column="households")
except jngis.JngisError as error:
    print(error)"""),
]

NOTEBOOKS["02_rebalance_communities.ipynb"] = [
    ("md", """\
# 02 社区规模调整 · Rebalancing communities

法律规定社区（居委会）一般在 1,000–3,000 户之间。规模过大的社区管理不过来，过小的社区缺少人手和资源。
本笔记本为一个区提出调整方案：每个社区都在规模范围内、保持连片、不跨街道、不拆分小区，
并尽可能少地调整住户。

You will: find the communities outside 1,000–3,000 households, run `rebalance`, read its report and
metrics, look at the before/after map, and export the proposal as a GeoPackage (for GIS) and an Excel
workbook (for the officials who approve it)."""),
    ("code", SETUP + """
from jngis import rebalance
from jngis.viz import plan_figure, plan_map"""),
    ("md", """\
## 1. 找出超出范围的社区 · Communities outside the band

We work on 历下区 (370102). Swap in your own district code, or your own `units` layer (each unit needs
`unit_id`, `households`, `street_code`, `community_code`; optionally `compound_id` for gated compounds
that must stay together)."""),
    ("code", """\
city = jngis.load_sample()
district = "370102"
units = city.units[city.units["street_code"].str.startswith(district)]
sizes = units.groupby("community_code")["households"].sum()
outside = sizes[(sizes < 1000) | (sizes > 3000)].rename("households").to_frame()
outside["problem"] = ["低于下限 below" if h < 1000 else "超过上限 above" for h in outside["households"]]
print(f"{len(units):,} units, {len(sizes)} communities, {len(outside)} outside 1,000-3,000 households")
outside.sort_values("households")"""),
    ("md", """\
## 2. 生成调整方案 · Run the rebalance

Each 街道 is solved on its own. Communities that are too large are split or give boundary blocks to
neighbours; those too small gain blocks or merge. The report lists, per touched community, every unit
that moves. A 街道 that cannot be brought within the band is listed in `plan.infeasible` with the reason
(nothing is dropped silently)."""),
    ("code", """\
# one district is small: a single process is quicker than starting a pool of workers
plan = rebalance(units, min_households=1000, max_households=3000, seed=0, progress=False, workers=1)
plan"""),
    ("code", """\
print(plan.report(max_rows=5)[:3000])"""),
    ("code", """\
metrics = pd.Series(plan.metrics, name="value")
metrics[["communities_before", "communities_after", "within_bounds_before", "within_bounds_after",
         "moved_households", "moved_share", "lower_bound", "mean_polsby_popper_before",
         "mean_polsby_popper_after", "contiguous_share_after"]]"""),
    ("code", """\
plan.changes[plan.changes["status"] != "kept"].head(15)"""),
    ("code", """\
plan.infeasible"""),
    ("md", """\
## 3. 留足增长空间 · Plans that last

调整户数最少的方案会把超大社区正好压到 3,000 户，过小社区正好补到 1,000 户：下一栋新楼入住，社区又超出范围。
下面比较几种设置：理想规模（如 1,500–2,500 户，软约束）、预留增长空间（上下限各留 10%），以及两者结合；
法定范围始终是硬约束。表中列出调整户数、理想规模内的社区数，以及按每年 2% 增长首个社区超出 3,000 户之前的年数。

The fewest-households plan leaves many communities just under 3,000 (and just over 1,000): the first new
building pushes them out again. `rebalance_tradeoff` runs one plan per setting — a preferred band
(`preferred=`, soft), headroom below the maximum and above the minimum (`headroom=`), both — and sets
households moved against communities inside the preferred band and the years until the first community
outgrows the legal band (2 % a year). The legal band stays hard in every plan."""),
    ("code", """\
import geopandas as gpd

from jngis import rebalance_tradeoff
from jngis.rebalance.tradeoff import TRADEOFF_HEADINGS

tradeoff = rebalance_tradeoff(units, seed=0, progress=False, workers=1)
tradeoff.table.rename(columns=TRADEOFF_HEADINGS).round(3)"""),
    ("code", """\
tradeoff.figure()"""),
    ("md", """\
We take the plan with headroom and the preferred band for the meeting: it moves more households than the
plain plan, but no community sits at the legal limit, so the redraw lasts. The table goes to the meeting as
an Excel sheet with Chinese headings."""),
    ("code", """\
tradeoff.to_excel(OUT / "02_tradeoff.xlsx")
plain = plan
plan = tradeoff.plans["预留10%+理想规模"]
for name, p in (("plain", plain), ("chosen", plan)):
    h = p.communities["households"]
    print(f"{name:>6}: {h.between(2900, 3000).sum():3d} communities at 2,900-3,000, "
          f"{h.between(1000, 1100).sum():3d} at 1,000-1,100, 95th percentile {h.quantile(0.95):,.0f}, "
          f"moved {p.metrics['moved_households']:,} households")
assert plan.communities["households"].between(1000, 3000).sum() >= plain.metrics["within_bounds_after"]"""),
    ("md", """\
**Planned housing.** The 街道 knows which projects will be occupied by the horizon year. `growth=` takes
them as points (or polygons) on open land, or per unit; the plan is checked against the horizon's
households and lists the communities that would leave the band by then (`growth_policy="refuse"` refuses
such a plan instead). Here: three projects of 900 households each, placed in the three largest communities
of each plan."""),
    ("code", """\
def projects_in(p):
    largest = p.communities.nlargest(3, "households")
    return gpd.GeoDataFrame({"households": [900] * 3, "street_code": largest["street_code"].to_numpy()},
                            geometry=largest.geometry.representative_point().to_numpy(), crs=p.communities.crs)

for name, p in (("plain", plain), ("chosen", plan)):
    checked = rebalance(units, seed=0, progress=False, workers=1, growth=projects_in(p), horizon=2030,
                        **({"headroom": 0.1, "preferred": (1500, 2500)} if name == "chosen" else {}))
    print(f"{name:>6}: {len(checked.leaving)} communities leave the band by 2030")
checked.leaving"""),
    ("md", """\
## 4. 调整前后对比 · Before and after

Left: today; right: the proposal. Green communities are within the band, blue below, red above; the
blocks that change community are outlined in orange (hover for their old and new code); a warning marker
flags each community still outside the band. The two maps move together."""),
    ("code", """\
plan_figure(plan)"""),
    ("code", """\
m = plan_map(plan, units, names=(city.streets, city.communities))
m.save(OUT / "02_plan_before_after.html")
m"""),
    ("md", """\
## 5. 导出 · Export

- **GeoPackage** for GIS: the units with their new community code, and the new community polygons
  (kept communities keep their name; new ones are marked 待命名 *to be named*).
- **Excel** for the officials: one sheet per 街道 listing every block that moves, with Chinese headings,
  plus a summary sheet and the list of community changes."""),
    ("code", """\
new_units = units.assign(community_code=units["unit_id"].map(plan.assignment).to_numpy())
names = city.communities.set_index("community_code")["name"]
new_communities = plan.communities.assign(
    name=plan.communities["community_code"].map(names).fillna("新设社区(待命名)").to_numpy())
path = OUT / "02_plan.gpkg"
jngis.write_layer(new_units, path, "units")
jngis.write_layer(new_communities[["community_code", "name", "street_code", "households", "geometry"]],
                  path, "communities")
jngis.read_layer(path, "communities").head()"""),
    ("code", """\
streets = dict(zip(city.streets["street_code"], city.streets["name"]))
workbook = plan.to_excel(OUT / "02_plan.xlsx", street_names=streets)
sheets = pd.read_excel(workbook, sheet_name=None)
print(list(sheets))
moved_rows = sum(len(table) for name, table in sheets.items() if name[:6] == district)
assert moved_rows == len(plan.moves), "every move is in the workbook"
sheets[list(sheets)[3]].head()"""),
    ("md", """\
## 6. 采纳为新版本 · Adopt the plan

方案批准后，社区调整与网格重划一起作为一个新的边界版本采纳：生效日起地图、工单落点和各项指标都按新边界，
旧版本仍可查询，每个社区、网格的户数去向都有记录。这里把本区的方案采纳到整个示例城市数据的一个副本
（示例数据本身不变）：只有本区的社区和网格改变，其他区原样保留；再读出两个版本之间的差异。

An approved redraw is adopted together with its regridding, as one boundary version. `proposal` gives the
boundaries the adoption makes for the whole city: the plan's communities grown over their 街道's open land
so that they tile it, every 街道 outside the plan exactly as it is. The grids are redrawn where the
communities changed (`make_grids(previous=)` keeps the others), then `store.adopt` writes the version in
one transaction (checks first: a refusal names what is wrong and writes nothing). A plan may cover some
街道 only, each of them whole: here the district's plan is adopted into a copy of the whole city's store
(the sample stays as it is); the other districts keep their communities, grids and work orders, and the
lineage and the diff are the district's only.

**再次调整时** · *The next redraw*: a code retired by a version is never given to another area. Pass the
store's retired codes to the next redraw — `rebalance(units, retired=store.retired_codes("communities"))`
and `make_grids(..., retired=store.retired_codes("grids"))` — and its new communities and grids take
codes never used before (notebook 03 shows it)."""),
    ("code", """\
import shutil
import tempfile

from jngis.sample import sample_path
from jngis.store import open_store
from jngis.versions import Boundaries, proposal

copy = Path(tempfile.mkdtemp()) / "city.gpkg"
shutil.copy(sample_path(), copy)  # version 1: today's boundaries of the whole city, with its work orders
store = open_store(copy)
after = proposal(plan, Boundaries.of(city), grids=city.grids)  # the whole city; only the plan's 街道 change
mine = after.communities["street_code"].isin(plan.communities["street_code"])
grids = jngis.make_grids(after.communities[mine], after.units[after.units["unit_id"].isin(units["unit_id"])],
                         previous=city.grids, seed=0, retired=store.retired_codes("grids"))
record = store.adopt(plan, communities=after.communities, grids=grids, note="历下区社区规模调整方案（示例）")
store.versions()[["version_id", "effective", "status", "adopted_by", "note"]]"""),
    ("md", """\
### 版本差异 · The difference between the versions

`store.diff(1, 2)`: households and units moved, communities and grids created, split, merged, dissolved or
adjusted (one row per changed code, with its partners), and the open work orders re-placed into the new
grids (each re-placement is in the order's trail). Only the district changed."""),
    ("code", """\
from jngis.codes import value_label
from jngis.viz import size_figure

diff = store.diff(1, 2)
assert diff.summary["households_moved"] == plan.metrics["moved_households"]
for table in (diff.communities, diff.grids, diff.units.rename(columns={"to": "code"})):
    assert table["code"].str.startswith(district).all()  # the other districts did not change
print(f"迁移 {diff.summary['households_moved']:,} 户（{diff.summary['units_moved']:,} 个单元），"
      f"重新落格工单 {diff.summary['orders_replaced']:,} 件")
kinds = pd.DataFrame({"社区": diff.communities["change"].value_counts(),
                      "网格": diff.grids["change"].value_counts()}).fillna(0).astype(int)
kinds.index = [value_label("status", {"created": "new"}.get(change, change)) for change in kinds.index]
kinds"""),
    ("code", """\
changed = diff.communities
size_figure(changed.loc[changed["change"] != "created", "households_before"],
            changed.loc[changed["change"] != "dissolved", "households_after"])"""),
    ("code", """\
now = store.read_layer("communities")  # the version in force
now = now[now["community_code"].str.startswith(district)]
moved = (changed.set_index("code")["households_after"] - changed.set_index("code")["households_before"])
moved = moved.reindex(now["community_code"], fill_value=0).rename("户数变化")
streets = city.streets[city.streets["street_code"].str.startswith(district)]
m = grid_map(now, moved, column="户数变化", names=(streets, now),
             title="历下区 调整后社区户数变化（版本 2 对比版本 1）")
m.save(OUT / "02_version_diff.html")
m"""),
]

NOTEBOOKS["03_make_grids.ipynb"] = [
    ("md", """\
# 03 网格划分 · Drawing grids

社区划定后，网格办要把每个社区划分为若干网格（城市居民网格一般 300–500 户），每个网格配备
“1+1+N+X” 力量：1 名网格长、1 名专职网格员、N 名兼职网格员、X 名执法人员。

You will: take one 街道 after its communities were redrawn (notebook 02), divide every community into
grids, check that the grids tile each community exactly (no gap, no overlap), check their sizes, compute
the staffing needed, and draw the map."""),
    ("code", SETUP + """
from jngis import check_tiling, grid_quality, grid_summary, make_grids, rebalance
from jngis.viz import grids_figure"""),
    ("md", """\
## 1. 调整后的街道 · A redrawn 街道

We pick the 街道 of 历下区 with the most communities outside the band, redraw it with `rebalance`, and
build the new communities layer (the union of their units)."""),
    ("code", """\
city = jngis.load_sample()
sizes = city.units.groupby(["street_code", "community_code"])["households"].sum()
outside = (~sizes.between(1000, 3000)).groupby(level="street_code").sum()
street = outside[outside.index.str.startswith("370102")].idxmax()
units = city.units[city.units["street_code"] == street]
plan = rebalance(units, seed=0, progress=False)
print(street, city.streets.set_index("street_code").loc[street, "name"], plan)
new_units = units.assign(community_code=units["unit_id"].map(plan.assignment).to_numpy())
names = city.communities.set_index("community_code")["name"]
communities = plan.communities.assign(
    name=plan.communities["community_code"].map(names).fillna("新设社区(待命名)").to_numpy())
communities[["community_code", "name", "households", "status"]]"""),
    ("md", """\
## 2. 划分网格 · Make the grids

`make_grids` splits each community into grids of 300–500 households (configurable), keeps blocks whole,
numbers grids west → east, north → south inside their community (15-digit codes) and adds the staffing
columns. Open land of a community joins the neighbouring grid (or becomes a dedicated grid with
`dedicated_min_area=`)."""),
    ("code", """\
grids = make_grids(communities, new_units, min_households=300, max_households=500, seed=0)
grids.drop(columns="geometry").head(10)"""),
    ("md", """\
## 3. 检查 · Checks

Tiling: per community the gap, overlap and area outside (m²) must be ~0. Sizes: the share of residential
grids within 300–500 households, and their compactness."""),
    ("code", """\
tiling = check_tiling(grids, communities, "community_code")
print("every community tiled exactly:", bool(tiling["ok"].all()))
tiling.head()"""),
    ("code", """\
pd.Series(grid_quality(grids, communities))"""),
    ("code", """\
grids_figure(grids, min_households=300, max_households=500)"""),
    ("md", """\
## 4. 人员配备 · Staffing summary

One grid leader and one full-time grid worker per grid by default (“1+1”); pass `staffing=` to
`make_grids` for your own N and X."""),
    ("code", """\
summary = grid_summary(grids, by="community")
summary.loc["合计 total"] = summary.sum()
summary"""),
    ("md", """\
## 5. 地图 · Map

Grids coloured by households (hover for the grid card), community and 街道 outlines, service stations and
party organisations."""),
    ("code", """\
area = grids.union_all()
m = grid_map(grids, column="households", stations=city.stations[city.stations.intersects(area)],
             party_orgs=city.party_orgs[city.party_orgs.intersects(area)], names=(city.streets, communities),
             title=f"{street} 网格户数")
m.save(OUT / "03_grids.html")
m"""),
    ("md", """\
## 6. 采纳为新版本 · Adopt the grids as the map

批准后的网格在生效日成为地图：此后新工单落入新网格，旧版本仍可查询（“去年三月这个地址属于哪个网格”）。

A store keeps every boundary version. `store.adopt` checks the proposal first (units are the store's,
communities tile their 街道, grids their community, codes extend their parents, no retired code comes
back, the date is not before the last version's) and refuses with the reason, writing nothing; then it
writes the version in one transaction. A community's polygon covers its share of roads and open land as
well as its units, so the communities are first grown over the open land (`plan_communities`) and the
grids drawn on them. We adopt into a store of this 街道 (a copy: the sample stays as it is), effective in
a month: the version waits, pending, until its day."""),
    ("code", """\
import datetime as dt
import tempfile

from jngis.store import open_store
from jngis.sample import make_slice
from jngis.versions import Boundaries, plan_communities

store = open_store(Path(tempfile.mkdtemp()) / "city.gpkg")
store.write_city(make_slice(city, street))  # today's boundaries of the 街道, with its work orders
tiled = plan_communities(plan, Boundaries.of(store.read_city()))
adopted_grids = make_grids(tiled, new_units, min_households=300, max_households=500, seed=0)
effective = dt.date.today() + dt.timedelta(days=30)
record = store.adopt(plan, communities=tiled, grids=adopted_grids, effective=effective,
                     note="网格调整方案（示例）")
store.versions()[["version_id", "effective", "status", "adopted_by", "note"]]"""),
    ("code", """\
print("grids in force today:", len(store.read_layer("grids")),
      "| on", effective, ":", len(store.read_layer("grids", at=effective)))
print("made in force:", store.apply_due_versions(now=effective))
diff = store.diff(1, 2)
pd.Series(diff.summary)"""),
    ("code", """\
diff.grids.head(10)"""),
    ("md", """\
### 再次划分 · Regridding again: retired codes stay retired

版本 2 撤销的网格编码（社区的网格变少、社区被撤销）不会再分给别的区域（北京 DB11/T 2157-2023）。
再次划分网格时把 `store.retired_codes("grids")` 传给 `make_grids(retired=)`：新网格按同样的顺序编号，
跳过撤销的编码；不传时，编码可能与撤销的编码重复，`store.adopt` 会拒绝并说明原因，什么也不写入。

Smaller grids (250–400 households) on the communities in force: first without `retired=` (the adoption
is refused if a retired code comes back), then with the store's retired codes (adopted, effective on the
same day as version 2)."""),
    ("code", """\
retired = store.retired_codes("grids")  # code -> the version that retired it
print(f"版本 2 撤销了 {len(retired)} 个网格编码: {', '.join(list(retired)[:3])} ...")
in_force = store.read_city()
finer = make_grids(in_force.communities, in_force.units, min_households=250, max_households=400, seed=0)
reused = sorted(set(finer["grid_code"]) & set(retired))
print(f"不传 retired=: {len(reused)} 个新网格用了撤销的编码")
if reused:
    try:
        store.adopt(finer, effective=effective)
    except jngis.JngisError as error:
        print("拒绝采纳 refused:", error)
finer = make_grids(in_force.communities, in_force.units, min_households=250, max_households=400, seed=0,
                   retired=retired)
assert not set(finer["grid_code"]) & set(retired)
store.adopt(finer, effective=effective, note="网格细分方案（示例）")
store.apply_due_versions(now=effective)
regridded = store.diff(2, 3)
pd.Series(regridded.summary)[lambda s: s > 0]"""),
    ("code", """\
m = grid_map(store.read_layer("grids"), column="households", names=(city.streets, in_force.communities),
             title=f"{street} 细分后网格户数（版本 3）")
m.save(OUT / "03_grids_version_3.html")
m"""),
]

NOTEBOOKS["04_workorders.ipynb"] = [
    ("md", """\
# 04 12345 工单 · Work orders in the grids

市民通过 12345 热线或手机地图（高德、腾讯）上报的问题带有位置。手机地图的坐标是 **GCJ-02**（“火星坐标”），
在济南与 CGCS2000/WGS84 相差约 500–900 米，必须先转换，否则工单会落到错误的网格。

You will: import a CSV of work orders whose coordinates are GCJ-02 (as exported from a consumer map),
convert them, place each order in its grid, count open and overdue orders per grid, find the hot spots,
and check how far households live from a service station — with suggested sites for new ones."""),
    ("code", SETUP + """
import warnings

import geopandas as gpd

from jngis import assign, coverage, grid_stats, make_grids, rollup, suggest_sites
from jngis.viz import coverage_map
from jngis.workorders import clean_order_rows, read_order_table"""),
    ("md", """\
## 1. 准备网格与导出文件 · Grids and the exported file

We use one 街道 of the sample (the committed slice, so this runs in seconds), draw its grids, and write
the CSV a consumer-map export would give: Chinese headings, coordinates in GCJ-02. With your own export,
skip the cell that writes the file and point `read_order_table` at it."""),
    ("code", """\
from jngis.sample import REFERENCE_TIME, load_slice

city = load_slice()
grids = make_grids(city.communities, city.units, seed=0)
now = REFERENCE_TIME  # "now" in the sample; use jngis.workorders.now_cst() with live data
recent = city.workorders[city.workorders["received_at"] > now - pd.Timedelta(days=60)]
exported = jngis.crs.to_gcj02(recent.to_crs("EPSG:4326"))
pd.DataFrame({
    "工单编号": recent["order_id"].to_numpy(),
    "问题类别": recent["category"].to_numpy(),
    "受理时间": recent["received_at"].dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
    "经度": exported.geometry.x.round(6).to_numpy(),
    "纬度": exported.geometry.y.round(6).to_numpy(),
}).to_csv(OUT / "04_orders_gcj02.csv", index=False, encoding="utf-8-sig")
print(open(OUT / "04_orders_gcj02.csv", encoding="utf-8-sig").read()[:300])"""),
    ("md", """\
## 2. 导入并转换坐标 · Import and convert

`read_order_table` matches the columns by their (Chinese or English) headings; `clean_order_rows` checks
every row and converts GCJ-02 to WGS84. Bad rows are returned with the reason, never dropped silently."""),
    ("code", """\
table = read_order_table(OUT / "04_orders_gcj02.csv")
good, bad = clean_order_rows(table, crs="gcj02")
print(f"{len(good)} rows read, {len(bad)} refused")
orders = jngis.crs.to_metric(
    gpd.GeoDataFrame(good, geometry=gpd.points_from_xy(good["lon"], good["lat"]), crs="EPSG:4326"))
orders.head()"""),
    ("md", """\
## 3. 定位到网格 · Place each order in its grid

Why convert? Placing the raw GCJ-02 coordinates as if they were WGS84 puts many orders in the wrong grid."""),
    ("code", """\
orders["grid_code"] = assign(orders, grids, key="grid_code")
raw = gpd.GeoDataFrame(geometry=gpd.points_from_xy(table["lon"].astype(float), table["lat"].astype(float)),
                       crs="EPSG:4326", index=table.index)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # raw points off the 街道's edge fall in no grid: counted below
    wrong = assign(raw, grids, key="grid_code")
same = (wrong.reindex(orders.index) == orders["grid_code"]).fillna(False)
print(f"converted: {orders['grid_code'].notna().mean():.0%} placed in a grid; "
      f"unconverted GCJ-02 would put {1 - same.mean():.0%} of the orders in the wrong grid or none")"""),
    ("md", """\
## 4. 每个网格的未办结与超期工单 · Open and overdue per grid

Status and due times live in the 12345 system (here: the sample's work-order layer, of which the CSV above
is an export). `grid_stats` places every order, station and party organisation in its grid and counts, as
of `now`, the open orders and the overdue ones (past their due time: 5 working days after dispatch,
Shandong rule)."""),
    ("code", """\
table = grid_stats(grids, stations=city.stations, party_orgs=city.party_orgs,
                   workorders=city.workorders, at=now)
table[["households", "orders", "open_orders", "overdue_orders", "orders_30d", "stations",
       "party_orgs"]].describe().round(1)"""),
    ("md", """\
## 5. 热点网格 · Hot spots

Grids with the most orders in the last 30 days per 100 households, and the categories behind them."""),
    ("code", """\
table["orders_30d_per_100_households"] = (100 * table["orders_30d"] / table["households"]).round(2)
hot = table.sort_values("orders_30d_per_100_households", ascending=False).head(5)
hot[["community_code", "households", "orders_30d", "orders_30d_per_100_households", "open_orders"]]"""),
    ("code", """\
hot_orders = orders[orders["grid_code"].isin(hot.index)]
pd.crosstab(hot_orders["grid_code"], hot_orders["category"])"""),
    ("code", """\
rollup(table, "community")[["grids", "households", "orders", "open_orders", "overdue_orders", "orders_30d"]]"""),
    ("code", """\
m = grid_map(grids, table, column="orders_30d", stations=city.stations, party_orgs=city.party_orgs,
             names=(city.streets, city.communities), title="近30天工单 orders in the last 30 days")
m.save(OUT / "04_orders_map.html")
m"""),
    ("md", """\
## 6. 服务站覆盖与建议新址 · Station coverage and suggested sites

15-minute community life circle (GB 50180-2018): 5 minutes ≈ 300 m, 10 ≈ 500 m, 15 ≈ 1,000 m. The
table gives, per community, the share of households within each distance of a service centre and the
service floor area against the norm (30 m² per 100 households). `suggest_sites` then picks, among the
blocks, the sites that would newly bring the most households within 500 m."""),
    ("code", """\
served = coverage(city.units, city.stations, radii=(300, 500, 1000))
served.communities.round(2)"""),
    ("code", """\
candidates = city.units.set_geometry(city.units.representative_point())[["unit_id", "geometry"]]
sites = suggest_sites(city.units, city.stations, candidates, 3, radius=500)
sites[["unit_id", "rank", "new_households", "covered_households", "covered_share"]]"""),
    ("code", """\
m = coverage_map(served, city.units, stations=city.stations, suggested=sites,
                 names=(city.streets, city.communities), title="距服务中心距离 与 建议新址")
m.save(OUT / "04_coverage.html")
m"""),
]


NOTEBOOKS["05_evaluation.ipynb"] = [
    ("md", """\
# 05 街呼区应 · 月度考核评价 · The monthly evaluation

每月按部门、区县、街道、社区、网格统计 12345 工单的受理、按时办结、结案、签收、退单、延期、督办、回访满意等指标，
并与上月比较排名（月比月评）。本笔记本用样例城市一年的工单：按部门排名、画图、导出会议用的 Excel 和打印版，
并在同一年的工单中查找重复上报（并单）。

You will: place a year of orders in their grids, route them to departments with the dispatch catalogue,
rank the departments for October 2026 against September, chart the ranking and the monthly trend,
write the meeting's workbook and print view, and measure the duplicate finder on planted duplicates.
Every rate is defined in `jngis.evaluation`'s documentation, so a reviewer can recompute it."""),
    ("code", SETUP + """
import matplotlib.pyplot as plt

from jngis.evaluation import evaluate, to_excel, to_html, trend
from jngis.workorders import (duplicate_scores, find_duplicates, plant_duplicates, sample_catalogue,
                              sample_departments, synthetic_calls, synthetic_trail)"""),
    ("md", """\
## 1. 一年的工单与部门 · A year of orders and the departments

The sample's orders carry their states and times, the department loop's included (签收, 联系, 到场, 督办,
回访 and 重办, 核查); `synthetic_trail` writes the steps they imply. The 街道's calls to departments (街呼) on
standing problems, with the 街道's ratings, come from `synthetic_calls`. Orders handled through a store
(`store.step(...)`) have their real trail instead (`store.trail_frame()`, `store.evaluation_orders()`,
`store.calls_frame()`)."""),
    ("code", """\
city = jngis.load_sample()
orders = city.workorders.assign(grid_code=jngis.assign(city.workorders, city.grids).to_numpy())
trail = synthetic_trail(orders)
departments = sample_departments(city.districts)
catalogue = sample_catalogue(departments)
end = orders["received_at"].max()  # the year of calls a server of the sample holds (store.load_sample_calls)
calls = synthetic_calls(city.streets, departments, start=end - pd.Timedelta(days=365), end=end, seed=2026)
print(f"{len(orders):,} orders, {len(trail):,} trail rows, {len(departments)} departments, "
      f"{len(catalogue)} catalogue rows, {calls['call_id'].nunique():,} calls of the 街道")
trail["action"].value_counts()"""),
    ("md", """\
## 2. 十月的部门排名 · October's ranking of departments

Units with fewer than 10 orders in the month are listed, not ranked (`report.unranked`)."""),
    ("code", """\
report = evaluate(orders, trail, period="2026-10", level="department", departments=departments,
                  catalogue=catalogue, calls=calls)
ranking = report.rankings["on_time_rate"]
ranking[["rank", "name", "on_time_rate", "received", "previous", "change", "rank_change"]].head(10)"""),
    ("code", """\
report.totals[["received", "resolved_on_time", "closed", "overdue_now", "returned", "signed_on_time",
               "supervised", "rehandled", "ratings", "on_time_rate", "closure_rate", "satisfaction_rate",
               "dissatisfaction_rate", "sign_rate", "mean_rating"]].round(3)"""),
    ("code", """\
report.rankings["mean_rating"][["rank", "name", "mean_rating", "received", "previous", "rank_change"]].head(8)"""),
    ("md", """\
## 3. 图表 · The ranking and the monthly trend"""),
    ("code", """\
history = trend(orders, trail, period="2026-10", months=6, level="department", departments=departments,
                catalogue=catalogue, calls=calls)
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
shown = pd.concat([ranking.head(8), ranking.tail(8)])
left.barh(shown["name"][::-1], shown["on_time_rate"][::-1], color="#4c78a8")
left.set_xlabel(jngis.codes.label("on_time_rate"))
left.set_title("2026-10 按时办结率 前八与后八")
for rate in ("on_time_rate", "closure_rate", "satisfaction_rate", "sign_rate"):
    right.plot(history.index, history[rate], marker="o", label=jngis.codes.label(rate))
right.set_ylim(0.5, 1)
right.legend()
right.set_title("全市月度趋势")
fig.tight_layout()"""),
    ("md", """\
## 4. 会议材料 · The workbook and the print view

One sheet per ranking with a native Excel bar chart, all figures, the units not ranked and the monthly trend
with a line chart; the print view is one A4 page."""),
    ("code", """\
workbook = to_excel(report, OUT / "05_evaluation.xlsx", history=history)
(OUT / "05_report.html").write_text(to_html(report), encoding="utf-8")
import openpyxl

openpyxl.load_workbook(workbook).sheetnames"""),
    ("md", """\
## 5. 重复上报 · Duplicate reports (并单)

Reports of the same category within 50 m and 24 hours are proposed as duplicates. To measure the finder,
3% of the year's orders are reported again (up to 30 m away, up to 12 hours later) and the proposals are
scored against them."""),
    ("code", """\
import time

planted, truth = plant_duplicates(city.workorders, share=0.03, seed=2026)
started = time.perf_counter()
proposed = find_duplicates(planted)
print(f"{len(planted):,} orders searched in {time.perf_counter() - started:.2f} s")
duplicate_scores(proposed, truth)"""),
    ("md", """\
## 6. 社区地图 · The communities on the map

The same month at the community level in 历下区, coloured by the on-time rate (communities with fewer
orders than the minimum are drawn too; the ranking leaves them out)."""),
    ("code", """\
local = evaluate(orders, trail, period="2026-10", level="community", names=city.communities)
lixia = city.communities[city.communities["community_code"].str.startswith("370102")]
m = grid_map(lixia, local.figures[["on_time_rate"]].rename_axis("community_code"),
             column="on_time_rate", names=city.streets, title="2026-10 历下区各社区按时办结率")
m.save(OUT / "05_communities.html")
m"""),
]


def build() -> list[Path]:
    written = []
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(
            cells=[new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in cells],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                      "language_info": {"name": "python"}},
        )
        for index, cell in enumerate(notebook.cells):  # stable ids: no diff noise on rebuild
            cell["id"] = f"{Path(name).stem[:2]}-{index:02d}"
        nbformat.validate(notebook)
        path = HERE / name
        nbformat.write(notebook, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(HERE.parent))
