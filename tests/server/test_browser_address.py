"""Addresses in the viewer, in a real browser: the search box finds an address and shows its
grid's card; an unsure address lists candidates, one outside the city says so, markup typed
in is shown as text; the report form fills the point from an address and creates the order there.
"""

from __future__ import annotations

import shutil

import httpx
from test_browser import ARGS, CHROMIUM, WAIT_MS, gated_page, idle, playwright_for


def test_an_address_in_the_search_box_and_the_report_form(city_file, slice_city, tmp_path, live_server, token,
                                                          require_tool):
    sync_playwright = playwright_for(require_tool)
    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    units = slice_city.units.dropna(subset=["building"])
    row, other = units.iloc[4], units.iloc[12]
    spoken = f"{row['road']}{row['door_number']}号院{int(row['building'])}栋"  # as a caller says it
    with live_server(store) as live, sync_playwright() as playwright:
        api = httpx.Client(base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        expected = api.get("/geocode", params={"q": spoken}).json()
        assert expected["status"] == "matched" and expected["unit_id"] == row["unit_id"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page, elsewhere, console_errors = gated_page(browser, live)
            page.on("dialog", lambda d: (console_errors.append("dialog: " + d.message), d.dismiss()))
            page.goto(live.url + "/")
            page.wait_for_function("() => window.jngis && window.jngis.ready === true", timeout=WAIT_MS)
            idle(page)

            # -- a dispatcher types the caller's address: the map goes there and shows the grid's card
            page.locator("#search-input").fill(spoken)
            page.locator("#search-input").press("Enter")
            page.wait_for_selector("#card:not([hidden]) #card-table", timeout=WAIT_MS)
            assert expected["grid_code"] in page.locator("#card h2").inner_text()
            assert "地址" in page.locator("#search-results").inner_text()
            centre = page.evaluate("() => window.jngis.map.getCenter().toArray()")
            assert abs(centre[0] - expected["lon"]) < 1e-4 and abs(centre[1] - expected["lat"]) < 1e-4

            # -- a building the door does not have: unsure, with the door's buildings as candidates
            page.locator("#search-input").fill(f"{other['road']}{other['door_number']}号99号楼")
            page.locator("#search-input").press("Enter")
            page.wait_for_selector("#search-results li.note", timeout=WAIT_MS)
            listed = page.locator("#search-results").inner_text()
            assert "地址不确定" in listed and "候选地址" in listed and str(other["road"]) in listed

            # -- outside the city, and markup typed in: said, shown as text, never run
            page.locator("#search-input").fill("北京市朝阳区建国路1号")
            page.locator("#search-input").press("Enter")
            page.wait_for_function("() => document.querySelector('#search-results').innerText.includes('不在本市')",
                                   timeout=WAIT_MS)
            page.locator("#search-input").fill('<img src=x onerror="alert(1)">')
            page.locator("#search-input").press("Enter")
            page.wait_for_function("() => document.querySelector('#search-results').innerText.includes('<img')",
                                   timeout=WAIT_MS)
            assert page.locator("#search-results img").count() == 0

            # -- the report form: the point from the address, the order created there
            page.locator("#report summary").click()
            page.locator("#report-address").fill(spoken)
            page.locator("#report-locate").click()
            page.wait_for_function("() => document.querySelector('#report-lon').value !== ''", timeout=WAIT_MS)
            assert float(page.locator("#report-lon").input_value()) == expected["lon"]
            assert float(page.locator("#report-lat").input_value()) == expected["lat"]
            assert expected["grid_code"] in page.locator("#report-status").inner_text()
            page.locator("#report-category").fill("环境卫生")
            page.locator("#report-token").fill(token)
            page.locator("#report-form button[type=submit]").click()
            page.wait_for_function("() => document.querySelector('#report-status').innerText.includes('已受理')",
                                   timeout=WAIT_MS)
            created = page.evaluate("() => window.jngis.lastReport")
            assert created["grid_code"] == expected["grid_code"]
            assert api.get(f"/workorders/{created['order_id']}").json()["grid_code"] == expected["grid_code"]

            # -- an unsure address is never placed
            page.locator("#report-address").fill(f"{other['road']}{other['door_number']}号99号楼")
            page.locator("#report-locate").click()
            page.wait_for_function("() => document.querySelector('#report-status').innerText.includes('地址不确定')",
                                   timeout=WAIT_MS)
            assert page.locator("#report-lon").input_value() == ""
            page.screenshot(path=str(tmp_path / "address.png"))
            assert elsewhere == [], f"requests left the server: {elsewhere}"
            assert console_errors == [], console_errors
        finally:
            browser.close()
