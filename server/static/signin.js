/* Sign-in: paste an API token (from `jngis users add` or the administrator); it is kept in this
 * tab's sessionStorage only and sent as "Authorization: Bearer" with every request of the page.
 * The server decides what the token may see and do; this module only shows who is signed in. */
import { $, TOKEN_KEY, state } from "./common.js";

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

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
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
  status.textContent = message || "";
  form.appendChild(input);
  form.appendChild(button);
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
