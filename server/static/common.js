/* What every module of the viewer shares: the page state, element lookup, JSON requests. */

// The page's state, also window.jngis: for the browser test and for curious planners.
export const state = {
  config: null, vocabulary: null, map: null, fillSource: null,
  statsEtag: null, counts: {}, statsLoaded: 0, selected: null, ready: false
};
window.jngis = state;

export function $(id) { return document.getElementById(id); }

export function getJSON(url) {
  return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
    if (!response.ok) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        throw new Error(body.detail || (response.status + " " + url));
      });
    }
    return response.json();
  });
}

// "2026-10-01T09:30:00" -> "2026-10-01 09:30" (the server's times are China Standard Time).
export function formatTime(value) {
  if (!value) return "";
  return String(value).replace("T", " ").slice(0, 16);
}
