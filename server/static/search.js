/* The search box: /search finds districts, 街道, communities and grids by code or name, and
 * /geocode finds the unit an address names (文化东路68号山大新村3号楼). A hit frames the map on
 * it (and opens its card when it is what the map colours); a sure address goes there at once,
 * an unsure one lists its candidates. */
import { $, getJSON, state } from "./common.js";
import { showCard } from "./card.js";

function listItem(kindText, name, code, go) {
  const item = document.createElement("li");
  item.tabIndex = 0;
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = kindText;
  const codeText = document.createElement("span");
  codeText.className = "code";
  codeText.textContent = code || "";
  item.appendChild(kind);
  item.appendChild(document.createTextNode(name));
  item.appendChild(codeText);
  item.addEventListener("click", go);
  item.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
  return item;
}

function frame(hit) {
  state.map.fitBounds([[hit.bbox[0], hit.bbox[1]], [hit.bbox[2], hit.bbox[3]]],
                      { padding: 60, maxZoom: 16, duration: 600 });
  if (hit.kind === state.fillSource) showCard(hit.code);
}

function hitItem(hit) {
  return listItem(state.vocabulary.level_labels[hit.kind] || hit.title, hit.name, hit.code, function () {
    frame(hit);
    $("search-results").hidden = true;
  });
}

// The grid (or community) an address lies in: its card, the map at the unit.
export function goToPlace(place) {
  state.map.jumpTo({ center: [place.lon, place.lat], zoom: Math.max(state.map.getZoom(), 16) });
  const code = state.fillSource === "grids" ? place.grid_code : place.community_code;
  if (code) showCard(code);
}

function placeItem(query, place) {
  return listItem("地址", query, place.grid_code, function () {
    goToPlace(place);
    $("search-results").hidden = true;
  });
}

// A candidate of an unsure address: its grid, framed through /search, and its card.
function candidateItem(candidate) {
  return listItem("候选地址", candidate.address, candidate.grid_code, function () {
    $("search-results").hidden = true;
    if (!candidate.grid_code) return;
    getJSON("/search?q=" + encodeURIComponent(candidate.grid_code)).then(function (answer) {
      const grid = answer.results.find(function (hit) { return hit.code === candidate.grid_code; });
      if (grid) frame(grid);
      else showCard(candidate.grid_code);
    });
  });
}

function note(text) {
  const item = document.createElement("li");
  item.className = "note";
  item.textContent = text;
  return item;
}

export function geocode(query) {
  // a city without addresses answers 404, a long text 422: then only names are searched
  if (query.length > 200) return Promise.resolve(null);
  return getJSON("/geocode?q=" + encodeURIComponent(query)).catch(function () { return null; });
}

export function search(query) {
  const list = $("search-results");
  list.innerHTML = "";
  if (!query) { list.hidden = true; return Promise.resolve(); }
  return Promise.all([getJSON("/search?q=" + encodeURIComponent(query)), geocode(query)]).then(function (both) {
    const answer = both[0], place = both[1];
    list.innerHTML = "";
    if (place && place.status === "matched") {
      list.appendChild(placeItem(query, place));
    } else if (place && place.status === "ambiguous") {
      list.appendChild(note("地址不确定（" + place.reason + "），请选择："));
      place.candidates.forEach(function (c) { list.appendChild(candidateItem(c)); });
    }
    answer.results.forEach(function (hit) { list.appendChild(hitItem(hit)); });
    if (!list.children.length) list.appendChild(note("未找到“" + query + "”" + (place ? "：" + place.reason : "")));
    list.hidden = false;
    if (place && place.status === "matched" && !answer.results.length) goToPlace(place);
  }).catch(function (error) {
    list.innerHTML = "";
    list.appendChild(note(error.message));
    list.hidden = false;
  });
}

export function wireSearch() {
  $("search").addEventListener("submit", function (e) {
    e.preventDefault();
    search($("search-input").value.trim());
  });
}
