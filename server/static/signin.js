/* Sign-in: paste an API token (from `jngis users add` or the administrator), or, where the city's
 * identity provider is configured (GET /auth/oidc), 统一身份认证登录: the OpenID Connect
 * authorization-code flow with PKCE for a public browser client (RFC 7636 S256, OpenID Connect
 * Core 3.1; the shape of panva's oauth4webapi, in plain Web Crypto). The token is kept in this
 * tab's sessionStorage only and sent as "Authorization: Bearer" with every request of the page.
 * The server decides what the token may see and do; this module only shows who is signed in.
 *
 * The provider's flow: a random verifier, state and nonce (32 bytes each, base64url) are kept in
 * sessionStorage for this one sign-in; the browser goes to the authorization endpoint with the
 * S256 challenge; on the way back (?code=&state=, handled at load before the page starts) the
 * state must match, the code is traded at the token endpoint with the verifier, and the ID token
 * is checked by the server with the nonce (POST /auth/oidc/signin) before it is kept. */
import { $, TOKEN_KEY, state } from "./common.js";

// This tab's sign-in in progress at the provider (one use: removed when the browser comes back).
const PENDING_KEY = "jngis.oidc";
const PENDING_MS = 10 * 60 * 1000;  // a sign-in left at the provider this long is not taken back
// Where the viewer signs in with the provider, if one is configured ({enabled: false} otherwise).
const provider = fetch("/auth/oidc", { headers: { Accept: "application/json" } })
  .then(function (response) { return response.ok ? response.json() : { enabled: false }; })
  .catch(function () { return { enabled: false }; });
let returned = "";  // what happened on the way back from the provider, shown by the sign-in form

function base64url(bytes) {
  let text = "";
  bytes.forEach(function (b) { text += String.fromCharCode(b); });
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText() { return base64url(crypto.getRandomValues(new Uint8Array(32))); }

// RFC 7636 4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))).
function challengeOf(verifier) {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)).then(function (digest) {
    return base64url(new Uint8Array(digest));
  });
}

// Where the provider sends the browser back: this page, without its query.
function redirectUri() { return location.origin + location.pathname; }

// 统一身份认证登录: to the provider's authorization endpoint, this sign-in's secrets kept in the tab.
export function signInWithProvider() {
  return provider.then(function (config) {
    if (!config.enabled) return "未配置统一身份认证";
    const pending = { state: randomText(), nonce: randomText(), verifier: randomText(), at: Date.now(),
                      issuer: config.issuer, client_id: config.client_id, token_endpoint: config.token_endpoint,
                      redirect_uri: redirectUri() };
    return challengeOf(pending.verifier).then(function (challenge) {
      const target = new URL(config.authorization_endpoint);
      const query = { response_type: "code", client_id: config.client_id, redirect_uri: pending.redirect_uri,
                      scope: config.scope, state: pending.state, nonce: pending.nonce,
                      code_challenge: challenge, code_challenge_method: "S256" };
      Object.keys(query).forEach(function (key) { target.searchParams.set(key, query[key]); });
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
      location.assign(target.toString());
      return "正在前往统一身份认证…";
    });
  });
}

// The code traded at the token endpoint (the verifier proves this tab asked for it).
function tradeCode(pending, code) {
  const form = new URLSearchParams({ grant_type: "authorization_code", code: code,
                                     redirect_uri: pending.redirect_uri, client_id: pending.client_id,
                                     code_verifier: pending.verifier });
  return fetch(pending.token_endpoint, { method: "POST", body: form, credentials: "omit",
                                         headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("统一身份认证未通过（授权码无效、已使用或校验失败），请重新登录");
      return response.json();
    }).then(function (tokens) {
      if (typeof tokens.id_token !== "string") throw new Error("统一身份认证未返回身份令牌");
      return tokens.id_token;
    });
}

// The server checks the ID token (signature, issuer, audience, expiry) and the nonce of this sign-in.
function checkedByServer(idToken, nonce) {
  return fetch("/auth/oidc/signin", { method: "POST", body: JSON.stringify({ id_token: idToken, nonce: nonce }),
                                      headers: { Accept: "application/json", "Content-Type": "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error(refusal(response));
      return response.json();
    });
}

// The way back from the provider (?code=...&state=...): done before the page starts, so it starts signed in.
function finishSignIn() {
  const query = new URLSearchParams(location.search);
  if (!query.has("state") || !(query.has("code") || query.has("error"))) return Promise.resolve();
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", location.pathname + location.hash);  // the code leaves the address bar
  function refuse(message) { returned = message; return Promise.resolve(); }
  if (!pending || Date.now() - pending.at > PENDING_MS) return refuse("登录请求已失效，请重新登录");
  if (query.get("state") !== pending.state) return refuse("登录状态校验失败（state 不符），请重新登录");
  if (query.has("iss") && query.get("iss") !== pending.issuer) return refuse("认证服务器不符，请重新登录");
  if (query.has("error")) return refuse("统一身份认证未通过：" + query.get("error"));
  return tradeCode(pending, query.get("code"))
    .then(function (idToken) {
      return checkedByServer(idToken, pending.nonce).then(function () {
        sessionStorage.setItem(TOKEN_KEY, idToken);
        state.token = idToken;
      });
    })
    .catch(function (error) { returned = error.message; });
}

await finishSignIn();

// The server's answers to a refused sign-in, in words for the official at the screen.
function refusal(response) {
  if (response.status === 429) {
    return "登录失败次数过多，请 " + (response.headers.get("Retry-After") || "稍") + " 秒后再试";
  }
  return response.status === 401 ? "令牌无效、已过期或已停用" : "登录失败（" + response.status + "）";
}

// Try a token against /layers; keep it and reload the page (which starts again as that user).
export function signIn(token) {
  const text = String(token || "").trim();
  if (!text) return Promise.resolve("请粘贴令牌");
  return fetch("/layers", { headers: { Accept: "application/json", Authorization: "Bearer " + text } })
    .then(function (response) {
      if (!response.ok) return refusal(response);
      return response.json().then(function () {  // read to the end: a reload would abort it
        sessionStorage.setItem(TOKEN_KEY, text);
        location.reload();
        return "";
      });
    });
}

// Signing out forgets the token (pasted or the provider's) and any sign-in in progress.
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  location.reload();
}

function signInForm(message) {
  const form = document.createElement("form");
  form.id = "signin";
  form.className = "signin";
  form.autocomplete = "off";
  const input = document.createElement("input");
  input.id = "token-input";
  input.type = "password";
  input.placeholder = "粘贴访问令牌登录";
  input.setAttribute("aria-label", "访问令牌");
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "登录";
  const status = document.createElement("p");
  status.id = "signin-status";
  status.className = "status";
  status.textContent = returned || message || "";
  form.appendChild(input);
  form.appendChild(button);
  provider.then(function (config) {
    if (!config.enabled) return;
    const sso = document.createElement("button");
    sso.id = "oidc-signin";
    sso.type = "button";
    sso.textContent = "统一身份认证登录";
    sso.addEventListener("click", function () {
      status.textContent = "正在前往统一身份认证…";
      signInWithProvider().then(function (problem) { status.textContent = problem; });
    });
    form.insertBefore(sso, status);
  });
  form.appendChild(status);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = "正在登录…";
    signIn(input.value).then(function (problem) { status.textContent = problem; });
  });
  return form;
}

function signedIn(principal) {
  const box = document.createElement("div");
  box.className = "signed-in";
  const who = document.createElement("span");
  who.id = "who";
  who.textContent = principal.label + " " + principal.name +
    (principal.scope.length ? "（" + principal.scope.join("、") + "）" : "");
  const out = document.createElement("button");
  out.id = "signout";
  out.type = "button";
  out.textContent = "退出";
  out.addEventListener("click", signOut);
  box.appendChild(who);
  box.appendChild(out);
  return box;
}

// The session box of the panel: the form, or who is signed in with a sign-out.
export function showSession(principal, message) {
  const session = $("session");
  session.innerHTML = "";
  state.principal = principal || null;
  const anonymous = !principal || principal.role === "anonymous";
  session.appendChild(anonymous ? signInForm(message) : signedIn(principal));
}

// /layers refused the page (anonymous reading is off, or the token no longer works): the form asks.
export function refused(error) {
  if (error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
  }
  showSession(null, error.status === 401 ? "本系统需要登录后使用" : error.message);
}
