"""The :class:`City` bundle: the layers of one city, validated together."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from jngis.codes import COMMUNITY_HOUSEHOLDS, FINISHED_STATES, GRID_HOUSEHOLDS
from jngis.errors import SchemaError
from jngis.layers.schema import KINDS, SCHEMAS
from jngis.layers.validation import validate

__all__ = ["City"]


@dataclass
class City:
    """The layers of one city, each a GeoDataFrame or ``None`` when absent.

    Examples
    --------
    >>> City().kinds()
    []
    """

    districts: gpd.GeoDataFrame | None = None
    streets: gpd.GeoDataFrame | None = None
    communities: gpd.GeoDataFrame | None = None
    units: gpd.GeoDataFrame | None = None
    grids: gpd.GeoDataFrame | None = None
    stations: gpd.GeoDataFrame | None = None
    party_orgs: gpd.GeoDataFrame | None = None
    workorders: gpd.GeoDataFrame | None = None
    meta: dict = field(default_factory=dict, repr=False)

    def kinds(self) -> list[str]:
        """The kinds of the layers present, in hierarchy order."""
        return [k for k in KINDS if getattr(self, k) is not None]

    def layers(self) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
        """Yield ``(kind, layer)`` for every layer present."""
        for kind in self.kinds():
            yield kind, getattr(self, kind)

    def validate(self) -> City:
        """Validate every layer present; return the city."""
        for kind, layer in self.layers():
            validate(layer, kind)
        return self

    def to_crs(self, crs) -> City:
        """A new City with every layer in ``crs``."""
        return dataclasses.replace(
            self, **{kind: layer.to_crs(crs) for kind, layer in self.layers()}
        )

    def households_by(self, kind: str) -> pd.Series | None:
        """Households per community or residential grid: the layer's own column, else summed from units."""
        if kind not in ("communities", "grids"):
            raise SchemaError(f"households_by: kind={kind!r}; expected 'communities' or 'grids'")
        layer = getattr(self, kind)
        key = SCHEMAS[kind].key
        if layer is None:
            return None
        if kind == "grids" and "grid_type" in layer.columns:
            layer = layer[layer["grid_type"] == "residential"]  # dedicated grids hold no households
        if "households" in layer.columns:
            return layer.set_index(key)["households"]
        if self.units is not None and key in self.units.columns:
            sums = self.units.groupby(key)["households"].sum()
            return sums.reindex(layer[key], fill_value=0)
        return None

    def summary(self, bands: dict[str, tuple[int, int]] | None = None) -> list[str]:
        """Lines describing the city: features per layer, households, size bands.

        ``bands`` maps "communities" / "grids" to (min, max) households; the
        defaults are :data:`jngis.codes.COMMUNITY_HOUSEHOLDS` (1,000-3,000) per
        community and :data:`jngis.codes.GRID_HOUSEHOLDS` (300-500) per grid.
        """
        bands = {"communities": COMMUNITY_HOUSEHOLDS, "grids": GRID_HOUSEHOLDS, **(bands or {})}
        lines = []
        for kind, layer in self.layers():
            line = f"{kind:<12} {len(layer):>9,}"
            if kind == "units":
                line += f"   households {int(layer['households'].sum()):,}"
            if kind == "workorders" and "status" in layer.columns:
                open_orders = (~layer["status"].isin(FINISHED_STATES)).sum()
                line += f"   open {open_orders:,}"
            lines.append(line)
        for kind, (low, high) in bands.items():
            households = self.households_by(kind)
            if households is None or len(households) == 0:
                continue
            below, above = int((households < low).sum()), int((households > high).sum())
            within = len(households) - below - above
            q = households.quantile([0, 0.25, 0.5, 0.75, 1]).round().astype(int).tolist()
            lines.append(
                f"{kind} by households: {within:,} within {low:,}-{high:,} "
                f"({within / len(households):.0%}), {below:,} below, {above:,} above; "
                f"min/q1/median/q3/max {'/'.join(f'{v:,}' for v in q)}"
            )
        return lines

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={len(layer):,}" for kind, layer in self.layers())
        return f"City({counts})"
