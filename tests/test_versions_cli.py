"""`jngis adopt` and `jngis versions list|show|diff`, on both stores."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from pgcluster import schema_dsn

import jngis
from jngis.cli import main
from jngis.sample import SHAPES_DIR, SLICE_FILE
from jngis.store import open_store


@pytest.fixture(params=["sqlite", "postgis"])
def store_url(request, tmp_path, slice_city):
    if request.param == "sqlite":
        path = tmp_path / "city.gpkg"
        shutil.copy(SHAPES_DIR / SLICE_FILE, path)
        return str(path)
    url = schema_dsn(request.getfixturevalue("postgis_dsn"))
    with open_store(url) as store:
        store.write_city(slice_city)
    return url


def test_adopt_then_list_show_diff(store_url, slice_city, tmp_path):
    coarse = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    plan = tmp_path / "plan.gpkg"
    coarse.to_file(plan, layer="grids", driver="GPKG")
    runner = CliRunner()
    adopted = runner.invoke(main, ["adopt", str(plan), "--effective", "2030-01-01", "--note", "历下区网格调整",
                                   "--store", store_url])
    assert adopted.exit_code == 0, adopted.output
    assert "adopted version 2 (pending until 2030-01-01)" in adopted.output
    listed = runner.invoke(main, ["versions", "list", "--store", store_url])
    assert listed.exit_code == 0 and "pending" in listed.output and "历下区网格调整" in listed.output
    assert len(listed.output.strip().splitlines()) == 2
    shown = runner.invoke(main, ["versions", "show", "2", "--store", store_url])
    assert shown.exit_code == 0 and "grids_dissolved" in shown.output
    diffed = runner.invoke(main, ["versions", "diff", "1", "2", "--store", store_url])
    assert diffed.exit_code == 0 and "units_moved            0" in diffed.output
    early = runner.invoke(main, ["adopt", str(plan), "--effective", "2029-12-31", "--store", store_url])
    assert early.exit_code == 1
    assert "error: adopt: effective=2029-12-31 is before version 2's effective date 2030-01-01" in early.output
    missing = runner.invoke(main, ["versions", "show", "7", "--store", store_url])
    assert missing.exit_code == 1 and "no version 7" in missing.output


def test_a_mistyped_store_is_refused_not_created(tmp_path):
    result = CliRunner().invoke(main, ["versions", "list", "--store", str(tmp_path / "typo.gpkg")])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not (tmp_path / "typo.gpkg").exists()
