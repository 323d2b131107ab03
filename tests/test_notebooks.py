"""The planner notebooks: committed without outputs, each runs top to bottom in under 90 s, and every
map it shows works with the internet cut (opened as Jupyter shows it, in headless Chromium)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import chromium
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
BUDGET_SECONDS = 90


def test_the_five_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_sample_city.ipynb",
        "02_rebalance_communities.ipynb",
        "03_make_grids.ipynb",
        "04_workorders.ipynb",
        "05_evaluation.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs; clear them before committing"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} has an execution count"


def test_generator_matches_the_committed_notebooks(tmp_path):
    """The .ipynb files are what notebooks/_build.py writes (edit the generator, not the files)."""
    sys.path.insert(0, str(NOTEBOOKS_DIR))
    try:
        import _build
    finally:
        sys.path.remove(str(NOTEBOOKS_DIR))
    for name, cells in _build.NOTEBOOKS.items():
        committed = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        assert [c.source for c in committed.cells] == [text for _, text in cells], name


@pytest.fixture(scope="module")
def browser(pytestconfig):
    with chromium.offline_browser(chromium.require_tool(pytestconfig)) as new_session:
        yield new_session


def check_maps_offline(browser, maps: list[dict], name: str) -> None:
    """Each map output, in its srcdoc iframe with only 127.0.0.1 reachable: drawn, nothing failed."""
    for number, out in enumerate(maps, 1):
        session = browser()
        frame = session.open_output(out["data"]["text/html"])
        shown = chromium.rendered(frame)
        assert shown, f"{name}: map {number} has no Leaflet map on the page"
        for side in shown:
            assert side["paths"] == side["features"] > 0, f"{name}: map {number} drew {side}"
            assert side["labels"] > 0 and side["raster_tiles"] == 0, f"{name}: map {number}: {side}"
        session.clean()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, sample_city, browser, monkeypatch):
    """Execute every cell in a fresh kernel (sample city already cached by the fixture)."""
    from nbclient import NotebookClient

    monkeypatch.delenv("TIANDITU_TK", raising=False)  # the maps are checked with the internet cut

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=BUDGET_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    assert seconds < BUDGET_SECONDS, f"{path.name} took {seconds:.0f} s"
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors
    images = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
              if "image/png" in out.get("data", {})]
    maps = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
            if "leaflet" in out.get("data", {}).get("text/html", "")]
    assert maps, f"{path.name} shows no map"
    check_maps_offline(browser, maps, path.name)
    written = sorted(p.name for p in (tmp_path / "output").iterdir())
    assert any(name.endswith(".html") for name in written)
    if path.name.startswith(("01", "02", "03", "05")):
        assert images, f"{path.name} shows no figure"
