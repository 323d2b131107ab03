/* The search box: /search finds districts, 街道, communities and grids by code or name;
 * a hit frames the map on it (and opens its card when it is what the map colours). */
import { $, getJSON, state } from "./common.js";
import { showCard } from "./card.js";

function hitItem(hit) {
  const list = $("search-results");
  const item = document.createElement("li");
  item.tabIndex = 0;
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = state.vocabulary.level_labels[hit.kind] || hit.title;
  const code = document.createElement("span");
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
  return item;
}

export function search(query) {
  const list = $("search-results");
  list.innerHTML = "";
  if (!query) { list.hidden = true; return; }
  getJSON("/search?q=" + encodeURIComponent(query)).then(function (answer) {
    list.innerHTML = "";
    if (!answer.results.length) {
      const none = document.createElement("li");
      none.textContent = "未找到“" + query + "”";
      list.appendChild(none);
    }
    answer.results.forEach(function (hit) { list.appendChild(hitItem(hit)); });
    list.hidden = false;
  }).catch(function (error) {
    list.innerHTML = "<li></li>";
    list.firstChild.textContent = error.message;
    list.hidden = false;
  });
}

export function wireSearch() {
  $("search").addEventListener("submit", function (e) {
    e.preventDefault();
    search($("search-input").value.trim());
  });
}
