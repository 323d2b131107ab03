/* The map: its style (layers, colours, labels), the legend, the MapLibre map itself.
 *
 * Labels: the style has no "glyphs" URL, so MapLibre (>= 5.11) draws every
 * character of a label locally with the browser's fonts (TinySDF), taking
 * "text-font" as CSS font families: Chinese names, digits and Latin letters
 * alike, with no glyph file and no request beyond this server.
 */
import { $, state } from "./common.js";

// CSS font families labels are drawn with (a CJK font first: Debian's, then Windows' and macOS').
const LABEL_FONTS = ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "sans-serif"];

// Classes of open work orders per grid, and their colours (light to dark red).
const CLASSES = [
  { from: 0, to: 0, color: "#f2f0ea", label: "0" },
  { from: 1, to: 1, color: "#fdd49e", label: "1" },
  { from: 2, to: 3, color: "#fc8d59", label: "2–3" },
  { from: 4, to: 6, color: "#e34a33", label: "4–6" },
  { from: 7, to: Infinity, color: "#990000", label: "≥7" }
];
const NO_DATA = "#d9d9d9";
const TILED = ["districts", "streets", "communities", "grids", "units", "stations", "party_orgs"];

function colourExpression() {
  const expression = ["step", ["coalesce", ["feature-state", "open"], -1], NO_DATA];
  CLASSES.forEach(function (c) { expression.push(c.from, c.color); });
  return expression;
}

// The style for the server's layers; sets state.fillSource (the layer coloured by open orders).
export function buildStyle(config) {
  const has = {};
  config.layers.forEach(function (layer) { has[layer.id] = layer; });
  const style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#f4f1ea" } }]
  };
  if (config.basemap_url) {
    style.sources.basemap = { type: "raster", tiles: [config.basemap_url], tileSize: 256 };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  TILED.forEach(function (id) {
    if (has[id] && has[id].tilejson) {
      style.sources[id] = { type: "vector", url: has[id].tilejson, promoteId: has[id].key };
    }
  });
  const fill = config.grids && style.sources.grids ? "grids" : "communities";
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

export function drawLegend() {
  const list = $("legend");
  list.innerHTML = "";
  CLASSES.concat([{ color: NO_DATA, label: "无数据" }]).forEach(function (c) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = c.color;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(c.label));
    list.appendChild(item);
  });
}

// The MapLibre map of the city's extent, with zoom buttons and a scale.
export function createMap(config, style) {
  const b = config.bounds;
  const map = new maplibregl.Map({
    container: "map",
    style: style,
    bounds: [[b[0], b[1]], [b[2], b[3]]],
    fitBoundsOptions: { padding: { top: 20, bottom: 20, right: 20, left: Math.min(310, window.innerWidth / 3) } },
    maxZoom: 19,
    localIdeographFontFamily: "'WenQuanYi Zen Hei', 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
    attributionControl: { compact: true, customAttribution: "jngis" },
    // where anonymous reading is off, tiles and labels need the signed-in token too
    transformRequest: config.anonymous ? undefined : function (url) {
      const here = url.charAt(0) === "/" || url.indexOf(location.origin + "/") === 0;
      if (!state.token || !here) return { url: url };
      return { url: url, headers: { Authorization: "Bearer " + state.token } };
    }
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "bottom-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  return map;
}

// Layer switches: each checkbox shows or hides the layers its data-layers names.
export function wireSwitches() {
  document.querySelectorAll(".switches input").forEach(function (box) {
    box.addEventListener("change", function () {
      box.dataset.layers.split(",").forEach(function (id) {
        if (state.map.getLayer(id)) {
          state.map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
        }
      });
    });
  });
}
