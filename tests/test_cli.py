"""The jngis command: real subprocesses, one clear line per user error."""

from __future__ import annotations

import subprocess
import sys

import pytest
import shapely

from jngis.layers import write_city, write_layer


def jngis(*args, check=False):
    return subprocess.run([sys.executable, "-m", "jngis.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=check)


def test_validate_a_good_city(slice_city, tmp_path):
    path = write_city(slice_city, tmp_path / "slice.gpkg")
    result = jngis("validate", path)
    assert result.returncode == 0, result.stderr
    assert "ok  units" in result.stdout and "226 features" in result.stdout


def test_info_prints_counts_and_size_bands(slice_city, tmp_path):
    path = write_city(slice_city, tmp_path / "slice.gpkg")
    result = jngis("info", path)
    assert result.returncode == 0, result.stderr
    assert "communities by households:" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["units", "226"] == next(r[:2] for r in rows if r and r[0] == "units")


def _break(units, how):
    units = units.copy()
    if how == "missing column":
        return units.drop(columns="households"), r"units: missing required column 'households'"
    if how == "self-intersection":
        units.loc[units.index[4], "geometry"] = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
        return units, r"invalid geometries \(Self-intersection"
    if how == "code length":
        units.loc[units.index[0], "community_code"] = "3701020030"
        return units, r"column 'community_code' has a code of the wrong form \('3701020030'\)"
    if how == "negative households":
        units.loc[units.index[9], "households"] = -3
        return units, r"column 'households' has the negative value -3"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing column", "self-intersection", "code length", "negative households"])
def test_validate_a_broken_file_prints_one_clear_line(slice_city, tmp_path, how):
    import re

    broken, message = _break(slice_city.units, how)
    path = tmp_path / "units.gpkg"
    # write without validating: this is the planner's broken file
    broken.to_file(path, layer="units", driver="GPKG")
    result = jngis("validate", path, "--kind", "units")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file(tmp_path):
    result = jngis("validate", tmp_path / "nope.gpkg")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.gpkg'}: no such file or folder"


def test_single_geojson_layer_kind_is_guessed(slice_city, tmp_path):
    path = write_layer(slice_city.communities, tmp_path / "communities.geojson")
    result = jngis("validate", path)
    assert result.returncode == 0, result.stderr
    assert "ok  communities" in result.stdout


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_serve_refuses_a_store_that_is_not_there(kind, tmp_path, request):
    """`jngis serve --store TYPO` stops with one line; it never starts an empty city."""
    from pgcluster import free_port, schema_dsn

    typo = str(tmp_path / "ctiy.gpkg") if kind == "sqlite" else schema_dsn(request.getfixturevalue("postgis_dsn"))
    result = jngis("serve", "--store", typo, "--port", free_port())
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().startswith(f"error: no store at {typo!r}")
    assert "Traceback" not in result.stderr and not (tmp_path / "ctiy.gpkg").exists()


@pytest.mark.slow
def test_sample_writes_the_city_and_validates(tmp_path):
    out = tmp_path / "city.gpkg"
    result = jngis("sample", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "communities by households:" in result.stdout
    check = jngis("validate", out)
    assert check.returncode == 0, check.stderr
    assert "ok  workorders" in check.stdout and "100,000 features" in check.stdout
