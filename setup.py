"""Package discovery that setup.cfg cannot write down: the folder server/ ships as ``jngis.server``.

Everything else (metadata, dependencies, data files) is in setup.cfg. Every folder
under jngis/ and server/ is a package (namespace packages for the data-only ones,
whose files MANIFEST.in lists), so a new subpackage or data folder ships without
an edit here.
"""

from setuptools import find_namespace_packages, setup

NOT_PACKAGES = ["__pycache__", "*.__pycache__"]


def packages_under(folder: str, name: str) -> list[str]:
    """``name`` and every package found in ``folder``, named as installed."""
    return [name] + [f"{name}.{found}" for found in find_namespace_packages(folder, exclude=NOT_PACKAGES)]


setup(packages=packages_under("jngis", "jngis") + packages_under("server", "jngis.server"))
