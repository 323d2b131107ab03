/* The per-grid counts: fetched from /stats/grids (with its ETag) and painted as feature-state,
 * so new counts show without reloading a tile. */
import { $, formatTime, state, withToken } from "./common.js";
import { showCard } from "./card.js";

export const POLL_MS = 30000;

// The first fetch starts with the page, not after the map has loaded.
export function fetchStats() {
  if (!state.config || !state.config.grids || state.fillSource !== "grids") {
    return Promise.resolve({ missing: true });
  }
  const headers = withToken({ Accept: "application/json" });
  if (state.statsEtag) headers["If-None-Match"] = state.statsEtag;
  return fetch("/stats/grids", { headers: headers, cache: "no-store" }).then(function (response) {
    if (response.status === 304) return { unchanged: true };
    if (!response.ok) throw new Error("/stats/grids: " + response.status);
    const etag = response.headers.get("ETag");
    return response.json().then(function (body) { return { body: body, etag: etag }; });
  }).catch(function (error) { return { error: error }; });
}

export function applyStats(result) {
  if (result.missing) {
    $("stats-status").textContent = "本城市尚无网格图层";
    return false;
  }
  if (result.error) {
    $("stats-status").textContent = "统计读取失败：" + result.error.message;
    return false;
  }
  if (result.unchanged) return false;
  const body = result.body;
  state.statsEtag = result.etag;
  let total = 0;
  const opens = body.columns.open_orders;
  body.grid_code.forEach(function (code, i) {
    const open = Number(opens[i] || 0);
    total += open;
    state.counts[code] = open;
    state.map.setFeatureState({ source: "grids", sourceLayer: "grids", id: code }, { open: open });
  });
  state.statsLoaded += 1;
  $("stats-status").textContent = body.count.toLocaleString("zh-CN") + " 个网格，未办结 " +
    total.toLocaleString("zh-CN") + " 件（" + formatTime(body.at) + "）";
  if (state.selected) showCard(state.selected);
  return true;
}

export function refreshStats() {
  return fetchStats().then(applyStats);
}
state.refreshStats = refreshStats;

// Poll every POLL_MS and on the 刷新 button.
export function startPolling() {
  $("refresh").addEventListener("click", refreshStats);
  setInterval(refreshStats, POLL_MS);
}
