/* The report form: a dispatcher types the caller's address, 定位 fills the point from it
 * (/geocode: the matched unit, in CGCS2000) and shows the grid, 提交 creates the work order
 * there (POST /workorders with the write token). An unsure address is never placed: its
 * candidates are shown instead. */
import { $, state } from "./common.js";
import { geocode, goToPlace } from "./search.js";

function say(text) { $("report-status").textContent = text; }

function locate() {
  const address = $("report-address").value.trim();
  $("report-lon").value = "";
  $("report-lat").value = "";
  if (!address) { say("请填写地址"); return Promise.resolve(null); }
  return geocode(address).then(function (place) {
    if (!place) { say("无法按地址定位（本市数据没有地址）"); return null; }
    if (place.status !== "matched") {
      const options = place.candidates.map(function (c) { return c.address + "（网格 " + c.grid_code + "）"; });
      say((place.status === "ambiguous" ? "地址不确定：" : "未找到：") + place.reason +
          (options.length ? "。候选：" + options.join("；") : ""));
      return null;
    }
    $("report-lon").value = place.lon;
    $("report-lat").value = place.lat;
    say("已定位：网格 " + place.grid_code + "（匹配度 " + place.score + "）");
    goToPlace(place);
    return place;
  });
}

function submit(event) {
  event.preventDefault();
  const lon = parseFloat($("report-lon").value), lat = parseFloat($("report-lat").value);
  if (!isFinite(lon) || !isFinite(lat)) { say("请先按地址定位"); return; }
  const body = { lon: lon, lat: lat, crs: "cgcs2000", category: $("report-category").value.trim(),
                 description: $("report-description").value.trim() || null };
  fetch("/workorders", {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "application/json",
               Authorization: "Bearer " + $("report-token").value }
  }).then(function (response) {
    return response.json().then(function (answer) {
      if (!response.ok) throw new Error(answer.detail || String(response.status));
      say("已受理：工单 " + answer.order_id + "，网格 " + answer.grid_code);
      state.lastReport = answer;
    });
  }).catch(function (error) { say("未能提交：" + error.message); });
}

export function wireReport() {
  $("report-locate").addEventListener("click", locate);
  $("report-form").addEventListener("submit", submit);
}
