/* What every module of the viewer shares: the page state, element lookup, JSON requests. */

// Where the signed-in token is kept: this tab only, gone when it closes (signin.js).
export const TOKEN_KEY = "jngis.token";

// The page's state, also window.jngis: for the browser test and for curious planners.
export const state = {
  config: null, vocabulary: null, map: null, fillSource: null,
  statsEtag: null, counts: {}, statsLoaded: 0, selected: null, ready: false,
  token: sessionStorage.getItem(TOKEN_KEY), principal: null
};
window.jngis = state;

export function $(id) { return document.getElementById(id); }

// The request headers with the signed-in token, when there is one.
export function withToken(headers) {
  if (state.token) headers.Authorization = "Bearer " + state.token;
  return headers;
}

function answer(url, response) {
  if (!response.ok) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      const error = new Error(body.detail || (response.status + " " + url));
      error.status = response.status;
      error.retryAfter = response.headers.get("Retry-After");
      throw error;
    });
  }
  return response.json();
}

export function getJSON(url) {
  return fetch(url, { headers: withToken({ Accept: "application/json" }) }).then(function (response) {
    return answer(url, response);
  });
}

export function postJSON(url, body) {
  return fetch(url, { method: "POST", body: JSON.stringify(body),
                      headers: withToken({ Accept: "application/json", "Content-Type": "application/json" }) })
    .then(function (response) { return answer(url, response); });
}

// "2026-10-01T09:30:00" -> "2026-10-01 09:30" (the server's times are China Standard Time).
export function formatTime(value) {
  if (!value) return "";
  return String(value).replace("T", " ").slice(0, 16);
}
