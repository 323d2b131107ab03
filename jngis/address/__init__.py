"""Chinese addresses: normalising, parsing and looking up the unit an address names.

``jngis.AddressIndex(units).lookup(texts)`` places a whole export at once,
``.locate(text)`` one caller's address; the sample city's addresses and their
noisy variants come from :mod:`jngis.address.sample`.
"""

from jngis.address.normalise import normalise
from jngis.address.parse import Components, Gazetteer, parse
from jngis.address.sample import JINAN_PREFIXES, VARIANT_KINDS, noisy_variants, sample_addresses

__all__ = ["normalise", "parse", "Gazetteer", "Components", "sample_addresses", "noisy_variants",
           "VARIANT_KINDS", "JINAN_PREFIXES"]

from jngis.address.index import RESULT_COLUMNS, AddressIndex, place_rows  # noqa: E402

__all__ += ["AddressIndex", "RESULT_COLUMNS", "place_rows"]
