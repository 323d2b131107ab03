/* The card of a grid (or of a community when the city has no grids): the server's figures,
 * labelled and with units from the server's vocabulary (jngis.codes, sent with /layers). */
import { $, formatTime, getJSON, state } from "./common.js";

// The card's fields in the order they are shown; other fields follow with their own label.
const CARD_FIELDS = [
  "households", "population", "grid_type", "grid_leaders", "full_time_workers", "part_time_workers",
  "enforcement_officers", "workers_needed", "stations", "station_area_m2", "party_orgs", "party_members",
  "open_orders", "overdue_orders", "orders_30d", "orders", "resolved_orders", "median_days_to_resolve",
  "satisfaction_rate"
];
const SKIP_FIELDS = { grid_code: 1, at: 1, grids: 1, rated_orders: 1, satisfied_orders: 1, community_code: 1,
                      street_code: 1, district_code: 1, community_name: 1, street_name: 1, district_name: 1 };

function labelOf(field) { return state.vocabulary.labels[field] || field; }
function unitOf(field) { return state.vocabulary.units[field] || ""; }

function formatValue(field, value) {
  if (value === null || value === undefined || value === "") return "—";
  const coded = state.vocabulary.values[field];
  if (coded && typeof value === "string") return coded[value] || value;
  if (typeof value === "number") {
    const unit = unitOf(field);
    if (field === "satisfaction_rate") value = value * 100;
    const text = Number.isInteger(value) ? value.toLocaleString("zh-CN") : value.toFixed(1);
    return text + (unit ? " " + unit : "");
  }
  return String(value);
}

export function showCard(code) {
  state.selected = code;
  if (state.map.getLayer("line-selected")) {
    state.map.setFilter("line-selected", ["==", ["get", state.config.fillKey], code]);
  }
  const url = state.fillSource === "grids" ? "/grids/" + encodeURIComponent(code)
                                           : "/collections/communities/items/" + encodeURIComponent(code);
  return getJSON(url).then(function (card) {
    renderCard(code, card.properties || card);
  }).catch(function (error) {
    renderCard(code, { error: error.message });
  });
}
state.showCard = showCard;

function renderCard(code, card) {
  const body = $("card-body");
  body.innerHTML = "";
  const title = document.createElement("h2");
  title.textContent = (state.fillSource === "grids" ? "网格 " : "社区 ") + code;
  body.appendChild(title);
  if (card.error) {
    const problem = document.createElement("p");
    problem.textContent = card.error;
    body.appendChild(problem);
    $("card").hidden = false;
    return;
  }
  const where = document.createElement("p");
  where.className = "where";
  where.textContent = [card.district_name, card.street_name, card.community_name || card.name]
    .filter(Boolean).join(" · ");
  body.appendChild(where);
  const table = document.createElement("table");
  table.id = "card-table";
  const shown = {};
  function row(field) {
    if (!(field in card)) return;
    shown[field] = 1;
    const tr = document.createElement("tr");
    tr.dataset.field = field;
    if (field === "overdue_orders" && card[field] > 0) tr.className = "alert";
    const th = document.createElement("th");
    th.textContent = labelOf(field);
    const td = document.createElement("td");
    td.textContent = formatValue(field, card[field]);
    tr.appendChild(th);
    tr.appendChild(td);
    table.appendChild(tr);
  }
  CARD_FIELDS.forEach(row);
  Object.keys(card).forEach(function (field) {
    if (!shown[field] && !SKIP_FIELDS[field] && typeof card[field] !== "object") row(field);
  });
  body.appendChild(table);
  if (card.at) {
    const at = document.createElement("p");
    at.className = "where";
    at.textContent = "统计时间 " + formatTime(card.at);
    body.appendChild(at);
  }
  $("card").hidden = false;
}

export function hideCard() {
  $("card").hidden = true;
  state.selected = null;
  if (state.map.getLayer("line-selected")) {
    state.map.setFilter("line-selected", ["==", ["get", state.config.fillKey], ""]);
  }
}

// Clicks on the coloured layer open a card; the × closes it.
export function wireCard() {
  const map = state.map;
  $("card-close").addEventListener("click", hideCard);
  if (!state.fillSource) return;
  map.on("click", "fill-orders", function (e) {
    const feature = e.features && e.features[0];
    if (feature) showCard(String(feature.properties[state.config.fillKey] || feature.id));
  });
  map.on("mouseenter", "fill-orders", function () { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "fill-orders", function () { map.getCanvas().style.cursor = ""; });
}
