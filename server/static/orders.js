/* The work orders the signed-in principal may see: a list with filters (the deadline card among them), an
 * order's details with its trail, the steps it may take now, the 街道's calls on it with their ratings,
 * and a reveal of the caller with a reason; and the link to the evaluation dashboard.
 *
 * Nothing is decided here: the server lists only the orders in the principal's scope, masks the
 * caller (or leaves it out), and sends each order with `actions`, the steps this principal may take
 * now; the buttons are drawn from that list, so new steps appear without changing this file. */
import { $, formatTime, getJSON, postJSON, state } from "./common.js";
import { hideCard } from "./card.js";

const PAGE = 50;
const DETAIL_FIELDS = ["order_id", "category", "status", "deadline", "received_at", "due_at", "dispatched_at",
                       "resolved_at", "closed_at", "extended_days", "district_code", "street_code",
                       "community_code", "grid_code", "description"];
const list = { offset: 0, total: 0, query: "" };

function words() { return state.vocabulary; }
function labelOf(field) { return words().labels[field] || field; }
function valueOf(field, value) {
  if (value === null || value === undefined || value === "") return "—";
  const coded = words().values[field];
  if (coded && typeof value === "string") return coded[value] || value;
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return formatTime(value);
  return String(value);
}
function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}
function personal(field) { return words().personal.indexOf(field) >= 0; }
function can(action) { return state.principal && state.principal.permissions.indexOf(action) >= 0; }

// The filters as query parameters: a place code goes to the level its digits name (vocabulary.levels).
function query() {
  const params = new URLSearchParams();
  const status = $("order-status").value;
  const category = $("order-category").value.trim();
  const place = $("order-place").value.trim();
  const card = $("order-card").value;
  if (status) params.set("status", status);
  if (card) params.set("card", card);
  if (category) params.set("category", category);
  if (place) {
    const level = words().levels.find(function (lv) { return lv.digits === place.length; });
    params.set(level ? level.key : "grid_code", place);
  }
  return params;
}

export function loadOrders(more) {
  list.offset = more ? list.offset + PAGE : 0;
  const params = query();
  params.set("limit", PAGE);
  params.set("offset", list.offset);
  const shown = $("order-list");
  if (!more) shown.innerHTML = "";
  $("order-count").textContent = "正在读取…";
  return getJSON("/workorders?" + params.toString()).then(function (page) {
    list.total = page.total;
    page.orders.forEach(function (order) { shown.appendChild(listItem(order)); });
    $("order-count").textContent = "共 " + page.total.toLocaleString("zh-CN") + " 件";
    $("order-more").hidden = list.offset + PAGE >= page.total;
  }).catch(function (error) { $("order-count").textContent = error.message; });
}
state.loadOrders = loadOrders;

function listItem(order) {
  const item = element("li");
  item.tabIndex = 0;
  item.dataset.order = order.order_id;
  item.appendChild(element("span", valueOf("status", order.status), "badge " + order.status));
  item.appendChild(element("span", order.category, "category"));
  item.appendChild(element("span", order.order_id + " · " + (order.grid_code || order.community_code || ""),
                           "code"));
  if (order.card) {  // 黄牌 / 红牌: the server's deadline card (jngis.workorders.card)
    const flag = element("span", valueOf("card", order.card), "card-flag " + order.card);
    flag.dataset.card = order.card;
    item.appendChild(flag);
  }
  function open() { showOrder(order.order_id); }
  item.addEventListener("click", open);
  item.addEventListener("keydown", function (e) { if (e.key === "Enter") open(); });
  return item;
}

export function showOrder(orderId) {
  const detail = $("order-detail");
  detail.hidden = false;
  detail.innerHTML = "";
  detail.appendChild(element("p", "正在读取…", "where"));
  const id = encodeURIComponent(orderId);
  return Promise.all([getJSON("/workorders/" + id), getJSON("/workorders/" + id + "/trail"),
                      getJSON("/workorders/" + id + "/loop")])
    .then(function (answers) { renderOrder(answers[0], answers[1].trail, answers[2].calls || []); })
    .catch(function (error) { detail.innerHTML = ""; detail.appendChild(element("p", error.message, "problem")); });
}
state.showOrder = showOrder;

function renderOrder(order, trail, calls) {
  const detail = $("order-detail");
  detail.innerHTML = "";
  detail.dataset.order = order.order_id;
  detail.appendChild(element("h3", "工单 " + order.order_id));
  const table = element("table");
  table.id = "order-table";
  function row(field, value) {
    const tr = element("tr");
    tr.dataset.field = field;
    tr.appendChild(element("th", labelOf(field)));
    tr.appendChild(element("td", valueOf(field, value)));
    table.appendChild(tr);
  }
  DETAIL_FIELDS.forEach(function (field) { if (field in order) row(field, order[field]); });
  const callers = Object.keys(order).filter(personal);
  callers.forEach(function (field) { row(field, order[field]); });
  detail.appendChild(table);
  if (callers.length && can("personal.reveal")) detail.appendChild(revealForm(order.order_id));
  detail.appendChild(actionsBox(order));
  detail.appendChild(callsBox(order, calls));
  detail.appendChild(element("h4", "办理记录"));
  const steps = element("ol", undefined, "trail");
  steps.id = "order-trail";
  trail.forEach(function (step) {
    const item = element("li");
    item.appendChild(element("span", formatTime(step.at), "at"));
    item.appendChild(element("span", valueOf("action", step.action), "action"));
    item.appendChild(element("span", valueOf("status", step.to_state), "to"));
    item.appendChild(element("span", step.who, "who"));
    if (step.note) item.appendChild(element("span", step.note, "note"));
    steps.appendChild(item);
  });
  detail.appendChild(steps);
}

// The caller's details are masked; the full values need a reason, which the access log keeps.
function revealForm(orderId) {
  const form = element("form", undefined, "reveal");
  form.id = "reveal";
  const button = element("button", "查看完整信息");
  button.type = "button";
  button.id = "reveal-open";
  const reason = element("input");
  reason.id = "reveal-reason";
  reason.placeholder = "查看理由（将记入访问日志）";
  reason.hidden = true;
  const confirm = element("button", "确认查看");
  confirm.type = "submit";
  confirm.hidden = true;
  const status = element("p", "", "status");
  status.id = "reveal-status";
  button.addEventListener("click", function () {
    button.hidden = true;
    reason.hidden = false;
    confirm.hidden = false;
    reason.focus();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    postJSON("/workorders/" + encodeURIComponent(orderId) + "/reveal", { reason: reason.value.trim() })
      .then(function (full) {
        Object.keys(full).filter(personal).forEach(function (field) {
          const cell = document.querySelector("#order-table tr[data-field='" + field + "'] td");
          if (cell) { cell.textContent = valueOf(field, full[field]); cell.className = "revealed"; }
        });
        form.innerHTML = "";
        form.appendChild(element("p", "已显示完整信息（本次查看已记录）", "status"));
      })
      .catch(function (error) { status.textContent = error.message; });
  });
  [button, reason, confirm, status].forEach(function (node) { form.appendChild(node); });
  return form;
}

// One button per step the server says this principal may take now (`actions`: label, the address that
// takes it, the fixed part of its body and the fields it asks for); the note box serves every step.
function actionsBox(order) {
  const box = element("div", undefined, "actions");
  box.id = "order-actions";
  if (!order.actions || !order.actions.length) return box;
  const note = element("input");
  note.id = "action-note";
  note.placeholder = "说明（退单、回复等须填写）";
  box.appendChild(note);
  const extra = element("div", undefined, "fields");
  const status = element("p", "", "status");
  order.actions.forEach(function (action) {
    const button = element("button", action.label || valueOf("action", action.action));
    button.type = "button";
    button.dataset.step = action.action;
    button.addEventListener("click", function () {
      const fields = (action.fields || []).filter(function (f) { return f.name !== "note"; });
      if (fields.length && extra.dataset.step !== action.action) {  // ask for its fields first
        showFields(extra, action, fields);
        return;
      }
      takeStep(order, action, note.value.trim(), extra).catch(function (error) { status.textContent = error.message; });
    });
    box.appendChild(button);
  });
  box.appendChild(extra);
  box.appendChild(status);
  return box;
}

function showFields(extra, action, fields) {
  extra.innerHTML = "";
  extra.dataset.step = action.action;
  fields.forEach(function (f) {
    let input;
    if (f.type === "choice") {
      input = element("select");
      (f.choices || []).forEach(function (c) { const o = element("option", c.label); o.value = c.value; input.appendChild(o); });
    } else if (f.type === "boolean") {
      input = element("input");
      input.type = "checkbox";
      input.checked = true;
    } else {
      input = element("input");
      input.type = f.type === "integer" ? "number" : "text";
    }
    input.dataset.field = f.name;
    input.dataset.kind = f.type;
    input.setAttribute("aria-label", f.label);
    input.placeholder = f.label;
    const row = element("label", f.label + " ");
    row.appendChild(input);
    extra.appendChild(row);
  });
  extra.appendChild(element("p", "填写后再次点击「" + action.label + "」", "status"));
}

function takeStep(order, action, note, extra) {
  const body = Object.assign({}, action.body || {});
  if (note) body.note = note;
  if (extra.dataset.step === action.action) {
    extra.querySelectorAll("[data-field]").forEach(function (input) {
      const kind = input.dataset.kind;
      if (kind === "boolean") body[input.dataset.field] = input.checked;
      else if (input.value !== "") body[input.dataset.field] = kind === "integer" ? Number(input.value) : input.value;
    });
  }
  return postJSON(action.href, body).then(function () {
    if (state.refreshStats) state.refreshStats();
    loadOrders(false);
    return showOrder(order.order_id);
  });
}

// -- the 街道's calls on this order (街呼区应): each called department's response, the 街道's rating of it,
// and, for principals that may call departments, a form to call one on an open order.
let departmentList = null;
function departments() {
  if (!departmentList) departmentList = getJSON("/departments").then(function (answer) { return answer.departments; });
  return departmentList;
}

function callsBox(order, calls) {
  const box = element("div", undefined, "calls");
  box.id = "order-calls-box";
  if (!calls.length && !mayCall(order)) return box;
  box.appendChild(element("h4", "街呼区应"));
  const list = element("ol", undefined, "order-calls");
  list.id = "order-calls";
  calls.forEach(function (call) {
    call.departments.forEach(function (answer) { list.appendChild(calledItem(order, call, answer)); });
  });
  box.appendChild(list);
  if (mayCall(order)) box.appendChild(callForm(order));
  return box;
}

function mayCall(order) { return can("departments.call") && words().open_states.indexOf(order.status) >= 0; }

function calledItem(order, call, answer) {
  const item = element("li");
  item.dataset.call = call.call_id;
  item.dataset.department = answer.department_code;
  const steps = ["signed_at", "contacted_at", "on_site_at", "done_at"]
    .filter(function (column) { return answer[column]; })
    .map(function (column) { return labelOf(column) + " " + formatTime(answer[column]); });
  item.appendChild(element("span", answer.department_code + "：" + call.problem + "（" +
                           (steps.length ? steps.join("、") : "待签收") + "）"));
  if (answer.rating !== null && answer.rating !== undefined) {
    item.appendChild(element("span", " 评分 " + answer.rating + (answer.rating_note ? "：" + answer.rating_note : ""),
                             "rating"));
  } else if (can("departments.call")) {
    item.appendChild(ratingForm(order, call, answer));
  }
  return item;
}

function ratingForm(order, call, answer) {
  const form = element("form", undefined, "rating-form");
  const rating = element("select");
  rating.name = "rating";
  rating.setAttribute("aria-label", "评分");
  [5, 4, 3, 2, 1].forEach(function (n) { const o = element("option", n + " 分"); o.value = n; rating.appendChild(o); });
  const note = element("input");
  note.name = "note";
  note.placeholder = "评价说明";
  const button = element("button", "评价");
  button.type = "submit";
  const status = element("span", "", "status");
  form.append(rating, note, button, status);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const body = { rating: Number(rating.value) };
    if (note.value.trim()) body.note = note.value.trim();
    postJSON("/calls/" + call.call_id + "/departments/" + encodeURIComponent(answer.department_code) + "/rating", body)
      .then(function () { return showOrder(order.order_id); })
      .catch(function (error) { status.textContent = error.message; });
  });
  return form;
}

function callForm(order) {
  const form = element("form", undefined, "call-form");
  form.id = "call-form";
  const pick = element("select");
  pick.id = "call-department";
  pick.setAttribute("aria-label", "呼叫部门");
  const problem = element("input");
  problem.id = "call-problem";
  problem.placeholder = "呼叫事项（必填）";
  problem.required = true;
  const button = element("button", valueOf("action", "call"));
  button.type = "submit";
  const status = element("span", "", "status");
  form.append(pick, problem, button, status);
  departments().then(function (known) {
    known.filter(function (d) { return d.districts.indexOf(order.district_code) >= 0; }).forEach(function (d) {
      const option = element("option", d.name);
      option.value = d.code;
      pick.appendChild(option);
    });
    form.dataset.ready = "true";
  }).catch(function (error) { status.textContent = error.message; });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    postJSON("/calls", { order_id: order.order_id, department_codes: [pick.value], problem: problem.value.trim() })
      .then(function () { return showOrder(order.order_id); })
      .catch(function (error) { status.textContent = error.message; });
  });
  return form;
}

function cardOptions() {
  const select = $("order-card");
  const cards = Object.keys(words().values.card || {});
  const both = [cards.join(","), cards.map(function (c) { return valueOf("card", c); }).join("+")];
  [["", "全部时限牌"]].concat(cards.map(function (c) { return [c, valueOf("card", c)]; }), cards.length > 1 ? [both] : [])
    .forEach(function (pair) {
      const option = element("option", pair[1]);
      option.value = pair[0];
      select.appendChild(option);
    });
}

function statusOptions() {
  const select = $("order-status");
  const all = element("option", "全部状态");
  all.value = "";
  select.appendChild(all);
  words().states.forEach(function (code) {
    const option = element("option", valueOf("status", code));
    option.value = code;
    select.appendChild(option);
  });
}

export function openOrders() {
  hideCard();
  document.body.classList.add("orders-open");
  $("orders").hidden = false;
  return loadOrders(false);
}

function closeOrders() {
  document.body.classList.remove("orders-open");
  $("orders").hidden = true;
}

// Only for principals that read orders: a button in the panel opens the list.
export function wireOrders() {
  // the evaluation dashboard (its page links back here) for the roles that read the evaluation
  $("dashboard-link").hidden = !can("evaluation.read");
  if (!can("orders.read")) return;
  statusOptions();
  cardOptions();
  $("orders-open").hidden = false;
  $("orders-open").addEventListener("click", openOrders);
  $("orders-close").addEventListener("click", closeOrders);
  $("order-filters").addEventListener("submit", function (event) { event.preventDefault(); loadOrders(false); });
  $("order-more").addEventListener("click", function () { loadOrders(true); });
}
