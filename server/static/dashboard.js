/* The evaluation dashboard: rankings and monthly trends (Apache ECharts, vendored), and an order's
   department steps (the actions the server offers the signed-in caller: jngis.workorders.actions_for). */

import { $, formatTime, getJSON } from "./common.js";

// The page's state, also window.jngisDashboard (for the browser test).
const state = { report: null, order: null, loads: 0, ready: false, charts: {}, values: {} };
window.jngisDashboard = state;

const PERCENT_RATES = ["on_time_rate", "closure_rate", "callback_rate", "satisfaction_rate",
  "dissatisfaction_rate", "sign_rate"];
const SHOWN = ["received", "resolved_on_time", "closed", "overdue_now", "signed_on_time", "returned",
  "extended", "supervised", "rehandled"];

// The Chinese label of a coded value (status, action, card), from the server's vocabulary (/layers).
function valueLabel(column, value) {
  return ((state.values[column] || {})[value]) || value;
}

function shown(rate, value) {
  if (value === null || value === undefined) return "—";
  if (PERCENT_RATES.includes(rate)) return (100 * value).toFixed(1) + "%";
  if (rate === "mean_rating") return Number(value).toFixed(2);
  return String(value);
}

function chart(id) {
  if (!state.charts[id]) state.charts[id] = window.echarts.init($(id), null, { renderer: "canvas" });
  return state.charts[id];
}

function query() {
  const params = new URLSearchParams({ period: $("dash-period").value, level: $("dash-level").value });
  $("dash-print").href = "/evaluation/print?" + params;
  $("dash-excel").href = "/evaluation/excel?" + params;
  return params;
}

function drawTotals(report) {
  const box = $("dash-totals");
  box.replaceChildren();
  const names = [...SHOWN, ...Object.keys(report.rankings)];
  for (const name of names) {
    if (!(name in report.totals)) continue;
    const cell = document.createElement("div");
    cell.className = "figure";
    cell.dataset.name = name;
    const label = document.createElement("span");
    label.textContent = report.labels[name] || name;
    const value = document.createElement("b");
    value.textContent = shown(name, report.totals[name]);
    cell.append(label, value);
    box.append(cell);
  }
}

function drawRanking(report) {
  const select = $("dash-rate");
  if (!select.options.length) {
    for (const rate of Object.keys(report.rankings)) select.add(new Option(report.labels[rate] || rate, rate));
  }
  const rate = select.value || Object.keys(report.rankings)[0];
  const rows = (report.rankings[rate] || []).slice(0, 20).reverse();
  const percent = PERCENT_RATES.includes(rate);
  $("dash-ranking-title").textContent = report.period + " " + report.level_label + (report.labels[rate] || rate) + report.labels.rank;
  chart("dash-ranking").setOption({
    animation: false,
    legend: { top: 0 },
    grid: { left: 150, right: 50, top: 30, bottom: 30 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", axisLabel: { formatter: v => percent ? Math.round(v * 100) + "%" : v } },
    yAxis: { type: "category", data: rows.map(r => r.rank + ". " + (r.name || r.unit)) },
    series: [
      { name: "本月", type: "bar", data: rows.map(r => r[rate]),
        label: { show: true, position: "right", formatter: p => shown(rate, p.value) } },
      { name: report.labels.previous, type: "bar", data: rows.map(r => r.previous), itemStyle: { opacity: 0.35 } }
    ]
  }, true);
}

function drawTrend(report) {
  const rates = ["on_time_rate", "closure_rate", "satisfaction_rate", "sign_rate"];
  chart("dash-trend").setOption({
    animation: false,
    legend: { top: 0 },
    grid: { left: 50, right: 20, top: 40, bottom: 30 },
    tooltip: { trigger: "axis", valueFormatter: v => shown("on_time_rate", v) },
    xAxis: { type: "category", data: report.trend.map(r => r.period) },
    yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: v => Math.round(v * 100) + "%" } },
    series: rates.map(rate => ({ name: report.labels[rate] || rate, type: "line",
      data: report.trend.map(r => r[rate]), connectNulls: false }))
  }, true);
}

export function load() {
  $("dash-status").textContent = "正在计算…";
  return getJSON("/evaluation?" + query()).then(function (report) {
    state.report = report;
    drawTotals(report);
    drawRanking(report);
    drawTrend(report);
    state.loads += 1;
    state.ready = true;
    $("dash-status").textContent = report.period + " " + report.level_label + "：" + report.figures.length +
      " 个单位，受理 " + report.totals.received + " 件";
  }).catch(function (error) { $("dash-status").textContent = "读取失败：" + error.message; });
}

// -- an order's department steps

function token() { return $("order-token").value.trim(); }

function fieldInput(field) {
  let input;
  if (field.type === "choice") {
    input = document.createElement("select");
    for (const choice of field.choices) input.add(new Option(choice.label, choice.value));
  } else if (field.type === "boolean") {
    input = document.createElement("select");
    input.add(new Option(field.name === "granted" ? "同意" : "通过", "true"));
    input.add(new Option(field.name === "granted" ? "不同意" : "不通过", "false"));
  } else {
    input = document.createElement("input");
    input.type = field.type === "integer" ? "number" : "text";
    if (field.minimum !== undefined) { input.min = field.minimum; input.max = field.maximum; }
  }
  input.name = field.name;
  input.placeholder = field.label + (field.required ? "（必填）" : "");
  input.required = !!field.required;
  input.setAttribute("aria-label", field.label);
  return input;
}

function fieldValue(field, input) {
  const text = input.value.trim();
  if (text === "") return undefined;
  if (field.type === "integer") return Number(text);
  if (field.type === "boolean") return text === "true";
  if (field.type === "departments") return text.split(/[,，;；\s]+/).filter(Boolean);
  return text;
}

const URL_STEP = { dispatched: "dispatch", returned: "return", closed: "close" };

function actionForm(orderId, action) {
  const form = document.createElement("form");
  form.dataset.action = action.action;
  const inputs = action.fields.filter(f => f.type !== "departments").map(f => [f, fieldInput(f)]);
  for (const [, input] of inputs) form.append(input);
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = action.label;
  form.append(button);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const body = {};
    for (const [field, input] of inputs) {
      const value = fieldValue(field, input);
      if (value !== undefined) body[field.name] = value;
    }
    const step = URL_STEP[action.action] || action.action;
    fetch("/workorders/" + encodeURIComponent(orderId) + "/" + step, {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() }
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) throw new Error(answer.detail || response.status);
        $("order-status").textContent = action.label + "：已完成";
        return openOrder(orderId).then(load);
      });
    }).catch(function (error) { $("order-status").textContent = action.label + "未完成：" + error.message; });
  });
  return form;
}

export function openOrder(orderId) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  return fetch("/workorders/" + encodeURIComponent(orderId) + "/loop", { headers: headers })
    .then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) throw new Error(answer.detail || response.status);
        return answer;
      });
    }).then(function (answer) {
      state.order = answer;
      const order = answer.order;
      $("order-detail").textContent = order.order_id + " · " + order.category + " · " +
        valueLabel("status", order.status) + (order.department_code ? " · 承办 " + order.department_code : "") +
        " · 时限 " + formatTime(order.due_at) + (order.card ? " · " + valueLabel("card", order.card) : "");
      const trail = $("order-trail");
      trail.replaceChildren(...answer.trail.map(function (row) {
        const item = document.createElement("li");
        item.textContent = formatTime(row.at) + " " + valueLabel("action", row.action) + (row.note ? "：" + row.note : "");
        return item;
      }));
      $("order-actions").replaceChildren(...answer.actions.map(a => actionForm(order.order_id, a)));
    }).catch(function (error) { $("order-status").textContent = "打开失败：" + error.message; });
}

function start() {
  const now = new Date();
  const month = new Date(now.getFullYear(), now.getMonth(), 1);
  $("dash-period").value = month.getFullYear() + "-" + String(month.getMonth() + 1).padStart(2, "0");
  const asked = new URLSearchParams(window.location.search);
  if (asked.get("period")) $("dash-period").value = asked.get("period");
  if (asked.get("level")) $("dash-level").value = asked.get("level");
  $("dash-form").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  $("dash-rate").addEventListener("change", function () { if (state.report) drawRanking(state.report); });
  $("dash-level").addEventListener("change", function () { $("dash-rate").replaceChildren(); });
  $("order-form").addEventListener("submit", function (event) {
    event.preventDefault();
    openOrder($("order-id").value.trim());
  });
  window.addEventListener("resize", function () { Object.values(state.charts).forEach(c => c.resize()); });
  getJSON("/layers").then(function (answer) { state.values = answer.vocabulary.values; })
    .catch(function () { /* codes shown as they are */ }).then(load);
}

start();
