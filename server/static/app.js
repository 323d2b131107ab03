/* 济南市基层治理网格地图: the MapLibre viewer of the jngis server (entry module).
 *
 * Everything comes from this server (tiles, labels, counts, the vocabulary, the
 * MapLibre code itself), so the page works with no internet. Grids are
 * coloured by their open work orders through feature-state joined from
 * /stats/grids, so new counts show without reloading a tile.
 *
 * Modules, one job each: common.js (page state, requests), map.js (style,
 * legend, map), stats.js (counts and polling), card.js (the grid card),
 * search.js (the search box: names, codes and addresses), report.js (a new order placed by its
 * address), versions.js (boundary versions, compare, the switch to a new version), signin.js
 * (the token and who is signed in), orders.js (the orders in the principal's scope). No build
 * step: the browser loads them as ES modules.
 */
import { $, TOKEN_KEY, getJSON, state } from "./common.js";
import { buildStyle, createMap, drawLegend, wireSwitches } from "./map.js";
import { applyStats, fetchStats, startPolling } from "./stats.js";
import { wireCard } from "./card.js";
import { wireSearch } from "./search.js";
import { wireReport } from "./report.js";
import { startVersions } from "./versions.js";
import { refused, showSession } from "./signin.js";
import { wireOrders } from "./orders.js";

function start(config) {
  state.config = config;
  state.vocabulary = config.vocabulary;
  showSession(config.principal, config.expired ? "登录已失效，请重新登录" : "");
  wireOrders();
  drawLegend();
  const style = buildStyle(config);
  if (!state.fillSource) $("fill-title").textContent = "网格";
  else if (state.fillSource !== "grids") $("fill-title").textContent = "社区（尚无网格图层）";
  config.fillKey = state.fillSource === "grids" ? "grid_code" : "community_code";
  state.map = createMap(config, style);
  const firstStats = fetchStats();
  state.map.on("load", function () {
    wireSwitches();
    wireSearch();
    wireReport();
    wireCard();
    firstStats.then(applyStats).then(startVersions).then(function () { state.ready = true; });
    startPolling();
  });
}

// A stored token the server no longer takes is dropped, and the page starts anonymously if it may.
function layers() {
  return getJSON("/layers").catch(function (error) {
    if (error.status !== 401 || !state.token) throw error;
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    return getJSON("/layers").then(function (config) { config.expired = true; return config; });
  });
}

layers().then(start).catch(function (error) {
  refused(error);
  $("stats-status").textContent = "无法读取图层：" + error.message;
});
