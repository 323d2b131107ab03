/* Boundary versions: the selector with effective dates, the compare mode, and the switch of an
 * open page to a newly effective version without a reload.
 *
 * The page polls /versions/current (answered from the server's memory) every
 * VERSION_POLL_MS. When the version changes, every tiled source gets the new version's tile
 * addresses from its TileJSON (versioned, immutable URLs: nothing stale can come from a cache),
 * the label sources are re-read, the grid colours are cleared and read again from /stats/grids,
 * which carries the new version's grids.
 *
 * Compare mode draws the boundaries in force before the shown version (dashed, from the OGC API
 * with datetime=), outlines the communities it changed, highlights the units it moved and lists
 * the households of each changed community before and after.
 */
import { $, getJSON, state } from "./common.js";

export const VERSION_POLL_MS = 3000;

const STATUS = { in_force: "现行", past: "历史", pending: "待生效" };
// A community's change in a version, labelled with the server's vocabulary (jngis.codes: a redraw's statuses).
function changeLabel(change) {
  const labels = state.vocabulary.values.status || {};
  return labels[change] || labels[change === "created" ? "new" : change] || change;
}
const OVERLAY = ["version-overlay-communities", "version-overlay-grids"];
const COMPARE = ["compare-before", "compare-after", "compare-units"];

Object.assign(state, { version: null, versions: [], versionSwitches: 0, comparing: false });

function dayBefore(day) {
  const d = new Date(day + "T12:00:00+08:00");
  d.setDate(d.getDate() - 1);
  return d.toISOString().slice(0, 10);
}

function versionLabel(v) {
  const when = v.effective ? v.effective + " 起施行" : "启用版本管理时";
  return "第" + v.version_id + "版 · " + when + " · " + (STATUS[v.status] || v.status);
}

// The version list in the selector, the served one selected.
function loadList() {
  return getJSON("/versions").then(function (body) {
    state.versions = body.versions;
    const select = $("version-select");
    select.innerHTML = "";
    body.versions.slice().reverse().forEach(function (v) {
      const option = document.createElement("option");
      option.value = String(v.version_id);
      option.textContent = versionLabel(v);
      option.selected = v.version_id === state.version;
      select.appendChild(option);
    });
    select.disabled = body.versions.length === 0;
    $("compare").disabled = !(state.version > 1);
    showCurrent();
  });
}

function showCurrent() {
  const found = state.versions.find(function (v) { return v.version_id === state.version; });
  $("version-status").textContent = !state.version ? "尚无边界版本记录" :
    "现行边界：第" + state.version + "版" + (found && found.effective ? "（" + found.effective + " 起施行）" : "");
}

// Poll the served version; a new one redraws the map.
function checkVersion() {
  // a few dozen bytes from the server's memory: asked for whole, never from a cache
  return fetch("/versions/current", { headers: { Accept: "application/json" }, cache: "no-store" })
    .then(function (response) { return response.ok ? response.json() : null; }).then(function (current) {
    if (current && current.version !== state.version) return switchTo(current.version);
    return null;
  }).catch(function () { return null; });
}

// Every tiled source to the tiles of `version`, labels and colours re-read.
function switchTo(version) {
  const map = state.map;
  state.version = version;
  const reloads = state.config.layers.filter(function (layer) {
    return layer.tilejson && map.getSource(layer.id);
  }).map(function (layer) {
    return getJSON(layer.tilejson).then(function (doc) { map.getSource(layer.id).setTiles(doc.tiles); });
  });
  ["districts", "streets", "communities"].forEach(function (kind) {
    const labels = map.getSource("labels-" + kind);
    if (labels) labels.setData("/layers/" + kind + "/labels");
  });
  return Promise.all(reloads).then(function () {
    if (state.fillSource === "grids") {
      map.removeFeatureState({ source: "grids", sourceLayer: "grids" });
      state.counts = {};
      state.statsEtag = null;
      return state.refreshStats();
    }
    return null;
  }).then(function () {
    state.versionSwitches += 1;
    $("version-select").value = String(version);
    clearOverlay();
    return loadList();
  }).then(function () {
    if (state.comparing) return compare(true);
    return null;
  });
}

function removeLayers(ids) {
  ids.forEach(function (id) {
    if (state.map.getLayer(id)) state.map.removeLayer(id);
    if (state.map.getSource(id)) state.map.removeSource(id);
  });
}

function clearOverlay() { removeLayers(OVERLAY); }

function itemsAt(kind, day) {
  return "/collections/" + kind + "/items?limit=10000&datetime=" + day;
}

// Another version chosen in the selector: its boundaries drawn over the map (the served one: nothing).
function showVersion(versionId) {
  clearOverlay();
  const chosen = state.versions.find(function (v) { return v.version_id === versionId; });
  if (!chosen || versionId === state.version) return;
  const day = chosen.effective || dayBefore(new Date().toISOString().slice(0, 10));
  state.map.addSource(OVERLAY[0], { type: "geojson", data: itemsAt("communities", day) });
  state.map.addLayer({ id: OVERLAY[0], type: "line", source: OVERLAY[0],
    paint: { "line-color": "#6a1b9a", "line-width": 2.5 } });
  if (state.config.grids) {
    state.map.addSource(OVERLAY[1], { type: "geojson", data: itemsAt("grids", day) });
    state.map.addLayer({ id: OVERLAY[1], type: "line", source: OVERLAY[1], minzoom: 12,
      paint: { "line-color": "#6a1b9a", "line-width": 1, "line-dasharray": [2, 2] } });
  }
}

// Compare mode: what the served version changed against the one before it.
function compare(on) {
  removeLayers(COMPARE);
  const list = $("compare-list");
  list.hidden = !on;
  state.comparing = on;
  if (!on || !(state.version > 1)) return Promise.resolve(null);
  const shown = state.version;
  return getJSON("/versions/" + shown).then(function (record) {
    if (shown !== state.version || !state.comparing) return null;
    const diff = record.diff;
    const before = record.effective ? dayBefore(record.effective) : dayBefore(new Date().toISOString().slice(0, 10));
    const map = state.map;
    map.addSource("compare-before", { type: "geojson", data: itemsAt("communities", before) });
    map.addLayer({ id: "compare-before", type: "line", source: "compare-before",
      paint: { "line-color": "#1a237e", "line-width": 2, "line-dasharray": [2, 1.5] } });
    const changed = diff.communities.map(function (row) { return row.code; });
    if (map.getSource("communities")) {
      map.addLayer({ id: "compare-after", type: "line", source: "communities", "source-layer": "communities",
        filter: ["in", ["get", "community_code"], ["literal", changed]],
        paint: { "line-color": "#ef6c00", "line-width": 3 } });
    }
    const moved = diff.units.map(function (row) { return row.unit_id; });
    if (map.getSource("units")) {
      map.addLayer({ id: "compare-units", type: "fill", source: "units", "source-layer": "units",
        filter: ["in", ["get", "unit_id"], ["literal", moved]],
        paint: { "fill-color": "#ffb300", "fill-opacity": 0.7, "fill-outline-color": "#e65100" } });
    }
    drawList(diff);
    return diff;
  });
}

function drawList(diff) {
  const list = $("compare-list");
  const s = diff.summary;
  list.innerHTML = "";
  const head = document.createElement("p");
  head.textContent = "第" + diff.from + "版 → 第" + diff.to + "版：调整楼栋 " + s.units_moved + " 个，涉及 " +
    Number(s.households_moved).toLocaleString("zh-CN") + " 户；重新落格工单 " + s.orders_replaced + " 件";
  list.appendChild(head);
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>社区</th><th>变化</th><th>调整前户数</th><th>调整后户数</th></tr></thead>";
  const body = document.createElement("tbody");
  diff.communities.forEach(function (row) {
    const tr = document.createElement("tr");
    tr.dataset.code = row.code;
    [row.name || row.code, changeLabel(row.change), row.households_before, row.households_after]
      .forEach(function (value) {
        const td = document.createElement("td");
        td.textContent = value === null || value === undefined ? "—" :
          typeof value === "number" ? value.toLocaleString("zh-CN") : String(value);
        tr.appendChild(td);
      });
    body.appendChild(tr);
  });
  table.appendChild(body);
  list.appendChild(table);
}

function sourcesVersion() {
  const layer = state.config.layers.find(function (l) { return l.tilejson && state.map.getSource(l.id); });
  const tiles = layer && state.map.getSource(layer.id).tiles;
  const found = tiles && /\/v(\d+)\//.exec(tiles[0]);
  return found ? Number(found[1]) : null;
}

export function startVersions() {
  $("version-select").addEventListener("change", function (event) { showVersion(Number(event.target.value)); });
  $("compare").addEventListener("change", function (event) { compare(event.target.checked); });
  state.compare = compare;
  state.checkVersion = checkVersion;
  return getJSON("/versions/current").then(function (current) {
    // the version of the tiles the page loaded (a switch may have come in between)
    state.version = sourcesVersion() || current.version;
    if (state.version !== current.version) return switchTo(current.version);
    return loadList();
  }).then(function () {
    setInterval(checkVersion, VERSION_POLL_MS);
  }).catch(function (error) {
    $("version-status").textContent = "无法读取边界版本：" + error.message;
  });
}
