"""`jngis adopt` and `jngis versions list|show|diff`, on both stores."""

from __future__ import annotations

from click.testing import CliRunner

import jngis
from jngis.cli import main


def test_adopt_then_list_show_diff(slice_store_url, slice_city, tmp_path):
    coarse = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    plan = tmp_path / "plan.gpkg"
    coarse.to_file(plan, layer="grids", driver="GPKG")
    runner = CliRunner()
    adopted = runner.invoke(main, ["adopt", str(plan), "--effective", "2030-01-01", "--note", "历下区网格调整",
                                   "--store", slice_store_url])
    assert adopted.exit_code == 0, adopted.output
    assert "adopted version 2 (pending until 2030-01-01)" in adopted.output
    listed = runner.invoke(main, ["versions", "list", "--store", slice_store_url])
    assert listed.exit_code == 0 and "pending" in listed.output and "历下区网格调整" in listed.output
    assert len(listed.output.strip().splitlines()) == 2
    shown = runner.invoke(main, ["versions", "show", "2", "--store", slice_store_url])
    assert shown.exit_code == 0 and "grids_dissolved" in shown.output
    diffed = runner.invoke(main, ["versions", "diff", "1", "2", "--store", slice_store_url])
    assert diffed.exit_code == 0 and "units_moved            0" in diffed.output
    early = runner.invoke(main, ["adopt", str(plan), "--effective", "2029-12-31", "--store", slice_store_url])
    assert early.exit_code == 1
    assert "error: adopt: effective=2029-12-31 is before version 2's effective date 2030-01-01" in early.output
    missing = runner.invoke(main, ["versions", "show", "7", "--store", slice_store_url])
    assert missing.exit_code == 1 and "no version 7" in missing.output


def test_a_mistyped_store_is_refused_not_created(tmp_path):
    result = CliRunner().invoke(main, ["versions", "list", "--store", str(tmp_path / "typo.gpkg")])
    assert result.exit_code == 1 and "no store at" in result.output
    assert not (tmp_path / "typo.gpkg").exists()
