/* 济南市基层治理网格地图: MapLibre viewer of the jngis server.
 *
 * Everything comes from this server (tiles, labels, counts, the MapLibre code
 * itself), so the page works with no internet. Grids are coloured by their
 * open work orders through feature-state joined from /stats/grids, so new
 * counts show without reloading a tile.
 *
 * Labels: the style has no "glyphs" URL, so MapLibre (>= 5.11) draws every
 * character of a label locally with the browser's fonts (TinySDF), taking
 * "text-font" as CSS font families: Chinese names, digits and Latin letters
 * alike, with no glyph file and no request beyond this server.
 */
(function () {
  "use strict";

  // CSS font families labels are drawn with (a CJK font first: Debian's, then Windows' and macOS').
  var LABEL_FONTS = ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "sans-serif"];

  // Classes of open work orders per grid, and their colours (light to dark red).
  var CLASSES = [
    { from: 0, to: 0, color: "#f2f0ea", label: "0" },
    { from: 1, to: 1, color: "#fdd49e", label: "1" },
    { from: 2, to: 3, color: "#fc8d59", label: "2–3" },
    { from: 4, to: 6, color: "#e34a33", label: "4–6" },
    { from: 7, to: Infinity, color: "#990000", label: "≥7" }
  ];
  var NO_DATA = "#d9d9d9";
  var POLL_MS = 30000;

  // The grid card: field -> [label, unit]. Unknown fields are shown with their own name.
  var CARD_FIELDS = [
    ["households", "户数", "户"],
    ["population", "人口", "人"],
    ["grid_type", "网格类型", ""],
    ["grid_leaders", "网格长", "人"],
    ["full_time_workers", "专职网格员", "人"],
    ["part_time_workers", "兼职网格员", "人"],
    ["enforcement_officers", "执法力量", "人"],
    ["workers_needed", "应配人员", "人"],
    ["stations", "党群服务站点", "个"],
    ["station_area_m2", "服务站面积", "㎡"],
    ["party_orgs", "党组织", "个"],
    ["party_members", "党员", "人"],
    ["open_orders", "未办结工单", "件"],
    ["overdue_orders", "超期工单", "件"],
    ["orders_30d", "近30天工单", "件"],
    ["orders", "工单总数", "件"],
    ["resolved_orders", "已办结工单", "件"],
    ["median_days_to_resolve", "办结用时中位数", "天"],
    ["satisfaction_rate", "满意率", "%"]
  ];
  var GRID_TYPES = { residential: "居住网格", dedicated: "专属网格" };
  var KIND_TITLES = { districts: "区县", streets: "街道", communities: "社区", grids: "网格" };
  var SKIP_FIELDS = { grid_code: 1, at: 1, grids: 1, rated_orders: 1, satisfied_orders: 1, community_code: 1, street_code: 1, district_code: 1,
                      community_name: 1, street_name: 1, district_name: 1 };

  var state = { config: null, map: null, fillSource: null, statsEtag: null, counts: {},
                statsLoaded: 0, selected: null };
  window.jngis = state;  // for the browser test and for curious planners

  function $(id) { return document.getElementById(id); }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || (response.status + " " + url));
        });
      }
      return response.json();
    });
  }

  function colourExpression() {
    var expression = ["step", ["coalesce", ["feature-state", "open"], -1], NO_DATA];
    CLASSES.forEach(function (c) { expression.push(c.from, c.color); });
    return expression;
  }

  function buildStyle(config) {
    var has = {};
    config.layers.forEach(function (layer) { has[layer.id] = layer; });
    var style = {
      version: 8,
      sources: {},
      layers: [{ id: "background", type: "background", paint: { "background-color": "#f4f1ea" } }]
    };
    if (config.basemap_url) {
      style.sources.basemap = { type: "raster", tiles: [config.basemap_url], tileSize: 256 };
      style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
    }
    ["districts", "streets", "communities", "grids", "units", "stations", "party_orgs"].forEach(function (id) {
      if (has[id] && has[id].tilejson) {
        style.sources[id] = { type: "vector", url: has[id].tilejson, promoteId: has[id].key };
      }
    });
    var fill = config.grids && style.sources.grids ? "grids" : "communities";
    state.fillSource = style.sources[fill] ? fill : null;
    if (state.fillSource) {
      style.layers.push({ id: "fill-orders", type: "fill", source: fill, "source-layer": fill,
        paint: { "fill-color": colourExpression(), "fill-opacity": 0.75 } });
      style.layers.push({ id: "line-grids", type: "line", source: fill, "source-layer": fill, minzoom: 12,
        paint: { "line-color": "#8a8173", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.3, 16, 1] } });
      style.layers.push({ id: "line-selected", type: "line", source: fill, "source-layer": fill,
        filter: ["==", ["get", has[fill].key], ""],
        paint: { "line-color": "#0d47a1", "line-width": 3 } });
    }
    function line(id, minzoom, color, widths) {
      if (!style.sources[id]) return;
      style.layers.push({ id: "line-" + id, type: "line", source: id, "source-layer": id, minzoom: minzoom,
        paint: { "line-color": color, "line-width": ["interpolate", ["linear"], ["zoom"]].concat(widths) } });
    }
    line("units", 14, "#9e9e9e", [14, 0.3, 18, 1]);
    line("communities", 11, "#6d6d6d", [11, 0.4, 16, 1.5]);
    line("streets", 9, "#3f3f3f", [9, 0.6, 16, 2.5]);
    line("districts", 0, "#b3261e", [8, 1.5, 16, 4]);
    function points(id, color, minzoom, visible) {
      if (!style.sources[id]) return;
      style.layers.push({ id: "point-" + id, type: "circle", source: id, "source-layer": id, minzoom: minzoom,
        layout: { visibility: visible ? "visible" : "none" },
        paint: { "circle-color": color, "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 2, 16, 6],
                 "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
    }
    points("stations", "#1565c0", 10, true);
    points("party_orgs", "#d32f2f", 12, false);
    function labels(id, minzoom, maxzoom, size, color) {
      if (!has[id]) return;
      style.sources["labels-" + id] = { type: "geojson", data: "/layers/" + id + "/labels" };
      style.layers.push({ id: "label-" + id, type: "symbol", source: "labels-" + id, minzoom: minzoom, maxzoom: maxzoom,
        layout: { "text-field": ["get", "name"], "text-font": LABEL_FONTS, "text-size": size,
                  "text-allow-overlap": false },
        paint: { "text-color": color, "text-halo-color": "#ffffff", "text-halo-width": 1.5 } });
    }
    labels("communities", 13.5, 24, 12, "#333333");
    labels("streets", 10.5, 14, 13, "#222222");
    labels("districts", 0, 11, 16, "#8e1c15");
    return style;
  }

  function drawLegend() {
    var list = $("legend");
    list.innerHTML = "";
    CLASSES.concat([{ color: NO_DATA, label: "无数据" }]).forEach(function (c) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = c.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(c.label));
      list.appendChild(item);
    });
  }

  // The per-grid counts: fetched (fetchStats) and painted as feature-state (applyStats).
  // The first fetch starts with the page, not after the map has loaded.
  function fetchStats() {
    if (!state.config || !state.config.grids || state.fillSource !== "grids") {
      return Promise.resolve({ missing: true });
    }
    var headers = { Accept: "application/json" };
    if (state.statsEtag) headers["If-None-Match"] = state.statsEtag;
    return fetch("/stats/grids", { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 304) return { unchanged: true };
      if (!response.ok) throw new Error("/stats/grids: " + response.status);
      var etag = response.headers.get("ETag");
      return response.json().then(function (body) { return { body: body, etag: etag }; });
    }).catch(function (error) { return { error: error }; });
  }

  function applyStats(result) {
    if (result.missing) {
      $("stats-status").textContent = "本城市尚无网格图层";
      return false;
    }
    if (result.error) {
      $("stats-status").textContent = "统计读取失败：" + result.error.message;
      return false;
    }
    if (result.unchanged) return false;
    var body = result.body;
    state.statsEtag = result.etag;
    var map = state.map;
    var total = 0;
    var opens = body.columns.open_orders;
    body.grid_code.forEach(function (code, i) {
      var open = Number(opens[i] || 0);
      total += open;
      state.counts[code] = open;
      map.setFeatureState({ source: "grids", sourceLayer: "grids", id: code }, { open: open });
    });
    state.statsLoaded += 1;
    $("stats-status").textContent = body.count.toLocaleString("zh-CN") + " 个网格，未办结 " +
      total.toLocaleString("zh-CN") + " 件（" + formatTime(body.at) + "）";
    if (state.selected) showCard(state.selected);
    return true;
  }

  function refreshStats() {
    return fetchStats().then(applyStats);
  }

  state.refreshStats = refreshStats;

  function formatTime(value) {
    if (!value) return "";
    return String(value).replace("T", " ").slice(0, 16);
  }

  function formatValue(field, value, unit) {
    if (value === null || value === undefined || value === "") return "—";
    if (field === "grid_type") return GRID_TYPES[value] || value;
    if (typeof value === "number") {
      if (field === "satisfaction_rate") value = value * 100;
      var text = Number.isInteger(value) ? value.toLocaleString("zh-CN") : value.toFixed(1);
      return text + (unit ? " " + unit : "");
    }
    return String(value);
  }

  function showCard(code) {
    state.selected = code;
    if (state.map.getLayer("line-selected")) {
      state.map.setFilter("line-selected", ["==", ["get", state.config.fillKey], code]);
    }
    var url = state.fillSource === "grids" ? "/grids/" + encodeURIComponent(code)
                                           : "/collections/communities/items/" + encodeURIComponent(code);
    return getJSON(url).then(function (card) {
      renderCard(code, card.properties || card);
    }).catch(function (error) {
      renderCard(code, { error: error.message });
    });
  }
  state.showCard = showCard;

  function renderCard(code, card) {
    var body = $("card-body");
    body.innerHTML = "";
    var title = document.createElement("h2");
    title.textContent = (state.fillSource === "grids" ? "网格 " : "社区 ") + code;
    body.appendChild(title);
    if (card.error) {
      var problem = document.createElement("p");
      problem.textContent = card.error;
      body.appendChild(problem);
      $("card").hidden = false;
      return;
    }
    var where = document.createElement("p");
    where.className = "where";
    where.textContent = [card.district_name, card.street_name, card.community_name || card.name]
      .filter(Boolean).join(" · ");
    body.appendChild(where);
    var table = document.createElement("table");
    table.id = "card-table";
    var shown = {};
    function row(field, label, unit) {
      if (!(field in card)) return;
      shown[field] = 1;
      var tr = document.createElement("tr");
      tr.dataset.field = field;
      if (field === "overdue_orders" && card[field] > 0) tr.className = "alert";
      var th = document.createElement("th");
      th.textContent = label;
      var td = document.createElement("td");
      td.textContent = formatValue(field, card[field], unit);
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    }
    CARD_FIELDS.forEach(function (f) { row(f[0], f[1], f[2]); });
    Object.keys(card).forEach(function (field) {
      if (!shown[field] && !SKIP_FIELDS[field] && typeof card[field] !== "object") row(field, field, "");
    });
    body.appendChild(table);
    if (card.at) {
      var at = document.createElement("p");
      at.className = "where";
      at.textContent = "统计时间 " + formatTime(card.at);
      body.appendChild(at);
    }
    $("card").hidden = false;
  }

  function search(query) {
    var list = $("search-results");
    list.innerHTML = "";
    if (!query) { list.hidden = true; return; }
    getJSON("/search?q=" + encodeURIComponent(query)).then(function (answer) {
      list.innerHTML = "";
      if (!answer.results.length) {
        var none = document.createElement("li");
        none.textContent = "未找到“" + query + "”";
        list.appendChild(none);
      }
      answer.results.forEach(function (hit) {
        var item = document.createElement("li");
        item.tabIndex = 0;
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = KIND_TITLES[hit.kind] || hit.title;
        var code = document.createElement("span");
        code.className = "code";
        code.textContent = hit.code;
        item.appendChild(kind);
        item.appendChild(document.createTextNode(hit.name));
        item.appendChild(code);
        function go() {
          state.map.fitBounds([[hit.bbox[0], hit.bbox[1]], [hit.bbox[2], hit.bbox[3]]],
                              { padding: 60, maxZoom: 16, duration: 600 });
          if (hit.kind === state.fillSource) showCard(hit.code);
          list.hidden = true;
        }
        item.addEventListener("click", go);
        item.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
        list.appendChild(item);
      });
      list.hidden = false;
    }).catch(function (error) {
      list.innerHTML = "<li></li>";
      list.firstChild.textContent = error.message;
      list.hidden = false;
    });
  }

  function wireControls() {
    document.querySelectorAll(".switches input").forEach(function (box) {
      box.addEventListener("change", function () {
        box.dataset.layers.split(",").forEach(function (id) {
          if (state.map.getLayer(id)) {
            state.map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
          }
        });
      });
    });
    $("search").addEventListener("submit", function (e) {
      e.preventDefault();
      search($("search-input").value.trim());
    });
    $("refresh").addEventListener("click", refreshStats);
    $("card-close").addEventListener("click", function () {
      $("card").hidden = true;
      state.selected = null;
      if (state.map.getLayer("line-selected")) state.map.setFilter("line-selected", ["==", ["get", state.config.fillKey], ""]);
    });
  }

  function start(config) {
    state.config = config;
    drawLegend();
    var style = buildStyle(config);
    if (!state.fillSource) $("fill-title").textContent = "网格";
    else if (state.fillSource !== "grids") $("fill-title").textContent = "社区（尚无网格图层）";
    config.fillKey = state.fillSource === "grids" ? "grid_code" : "community_code";
    var b = config.bounds;
    var map = new maplibregl.Map({
      container: "map",
      style: style,
      bounds: [[b[0], b[1]], [b[2], b[3]]],
      fitBoundsOptions: { padding: { top: 20, bottom: 20, right: 20, left: Math.min(310, window.innerWidth / 3) } },
      maxZoom: 19,
      localIdeographFontFamily: "'WenQuanYi Zen Hei', 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
      attributionControl: { compact: true, customAttribution: "jngis" }
    });
    state.map = map;
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "bottom-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    var firstStats = fetchStats();
    map.on("load", function () {
      wireControls();
      firstStats.then(applyStats).then(function () { state.ready = true; });
      setInterval(refreshStats, POLL_MS);
    });
    if (state.fillSource) {
      map.on("click", "fill-orders", function (e) {
        var feature = e.features && e.features[0];
        if (feature) showCard(String(feature.properties[config.fillKey] || feature.id));
      });
      map.on("mouseenter", "fill-orders", function () { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", "fill-orders", function () { map.getCanvas().style.cursor = ""; });
    }
  }

  getJSON("/layers").then(start).catch(function (error) {
    $("stats-status").textContent = "无法读取图层：" + error.message;
  });
})();
