"""The layer kinds and their schemas: the contract :func:`jngis.layers.validate` enforces."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from jngis import codes
from jngis.errors import SchemaError
from jngis.workorders import STATES

__all__ = ["Column", "LayerSchema", "ADDRESS_COLUMNS", "SCHEMAS", "KINDS", "CODE_DIGITS", "WORKORDER_STATES",
           "guess_kind"]

#: Digits of each administrative code column (:data:`jngis.codes.CODE_DIGITS`).
CODE_DIGITS = codes.CODE_DIGITS

#: States of a 12345 work order (the closed loop, plus the side states):
#: :data:`jngis.workorders.STATES`, whose state table they come from.
WORKORDER_STATES = STATES


@dataclass(frozen=True)
class Column:
    """One column of a layer schema.

    ``dtype`` is one of ``"code"`` (a string of ``CODE_DIGITS[name]`` digits),
    ``"id"`` (a non-empty string or integer key), ``"str"``, ``"count"`` (a
    non-negative integer), ``"number"`` (a non-negative finite number) or
    ``"datetime"``. ``choices`` restricts the values; ``parent`` names the code
    column this code must extend.
    """

    name: str
    dtype: str
    required: bool = True
    choices: tuple[str, ...] | None = None
    parent: str | None = None
    nullable: bool = False


@dataclass(frozen=True)
class LayerSchema:
    """The schema of one layer kind: geometry family, key column and columns."""

    kind: str
    geometry: str  # "polygon" or "point"
    key: str
    columns: tuple[Column, ...]
    #: Optional columns that only make sense together: a layer has all or none of each group,
    #: and a row with a value in one has a value in the others.
    together: tuple[tuple[str, ...], ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(f"{self.kind}: name={name!r} is not a column of the schema; expected one of "
                          f"{[c.name for c in self.columns]}")


#: A unit's standard address, all optional: district name, road, door number (号), compound
#: (小区/院) name, building number (号楼; none for the only building at its door), other
#: names (``|``-separated: an old address ``府前街12号`` or another compound name) and the
#: whole address written out. :class:`jngis.AddressIndex` reads them.
ADDRESS_COLUMNS = (
    Column("district", "str", required=False, nullable=True),
    Column("road", "str", required=False, nullable=True),
    Column("door_number", "count", required=False, nullable=True),
    Column("compound_name", "str", required=False, nullable=True),
    Column("building", "count", required=False, nullable=True),
    Column("aliases", "str", required=False, nullable=True),
    Column("address", "str", required=False, nullable=True),
)

SCHEMAS: dict[str, LayerSchema] = {
    s.kind: s
    for s in (
        LayerSchema(
            "districts",
            "polygon",
            "district_code",
            (Column("district_code", "code"), Column("name", "str")),
        ),
        LayerSchema(
            "streets",
            "polygon",
            "street_code",
            (
                Column("street_code", "code", parent="district_code"),
                Column("name", "str"),
                Column("district_code", "code"),
            ),
        ),
        LayerSchema(
            "communities",
            "polygon",
            "community_code",
            (
                Column("community_code", "code", parent="street_code"),
                Column("name", "str"),
                Column("street_code", "code"),
            ),
        ),
        LayerSchema(
            "units",
            "polygon",
            "unit_id",
            (
                Column("unit_id", "id"),
                Column("households", "count"),
                Column("street_code", "code"),
                Column("community_code", "code", parent="street_code"),
                Column("compound_id", "id", required=False, nullable=True),
                Column("population", "count", required=False),
                # the standard address (jngis.address): 历下区 文化东路 68号 山大新村 3号楼
                *ADDRESS_COLUMNS,
            ),
            together=(("road", "door_number"),),
        ),
        LayerSchema(
            "grids",
            "polygon",
            "grid_code",
            (
                Column("grid_code", "code", parent="community_code"),
                Column("community_code", "code"),
                Column("households", "count"),
                Column("grid_type", "str", choices=("residential", "dedicated")),
            ),
        ),
        LayerSchema(
            "stations",
            "point",
            "station_id",
            (
                Column("station_id", "id"),
                Column("name", "str"),
                Column("level", "str", choices=("community", "grid")),
                Column("area_m2", "number"),
            ),
        ),
        LayerSchema(
            "party_orgs",
            "point",
            "org_id",
            (
                Column("org_id", "id"),
                Column("name", "str"),
                Column("kind", "str"),
                Column("members", "count"),
            ),
        ),
        LayerSchema(
            "workorders",
            "point",
            "order_id",
            (
                Column("order_id", "id"),
                Column("category", "str"),
                Column("status", "str", choices=WORKORDER_STATES),
                Column("received_at", "datetime"),
                Column("due_at", "datetime", nullable=True),
            ),
        ),
    )
}

#: Layer kinds in hierarchy order (also the order of layers in a City file).
KINDS: tuple[str, ...] = tuple(SCHEMAS)


def guess_kind(gdf: pd.DataFrame) -> str:
    """Name the layer kind whose key column the table has.

    Examples
    --------
    >>> import geopandas as gpd
    >>> guess_kind(gpd.GeoDataFrame({"unit_id": []}, geometry=[]))
    'units'
    """
    # most specific first: a communities layer also has street_code, the streets key
    for kind, schema in reversed(SCHEMAS.items()):
        if schema.key in gdf.columns:
            return kind
    raise SchemaError(
        f"cannot tell the layer kind from its columns {list(gdf.columns)}; "
        f"expected one of the key columns {', '.join(s.key for s in SCHEMAS.values())} "
        "or an explicit kind"
    )
