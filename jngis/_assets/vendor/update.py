"""Copy the vendored front-end libraries from npm, and check them.

The one list of what jngis ships is ``manifest.json`` beside this file: per npm
package its version, licence, who uses it, where its files live (``root``,
``package:folder``) and which files of the npm package are copied there.
This script keeps the copies, their sha256 and ``README.md`` in step with it.

Usage (maintainers only; nothing in jngis downloads anything at run time)::

    python jngis/_assets/vendor/update.py            # check: hashes and README match
    python jngis/_assets/vendor/update.py --install leaflet leaflet.sync
        # npm install the versions in manifest.json into a temporary folder, copy the
        # listed files, then rewrite the hashes and README.md

To move to a new version, change ``version`` in manifest.json, run
``--install NAME``, and read the package's changelog.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
README = HERE / "README.md"

_README_HEAD = """\
# Vendored front-end libraries

jngis works with no internet: the maps of `jngis.viz` inline these files into the page
(a saved map is one HTML file that opens offline; Jupyter shows it in a srcdoc iframe), and
the map server's viewer serves MapLibre from its static folder. Nothing is loaded from a CDN.

Generated from `manifest.json` by `update.py` (do not edit the table by hand).

| package (npm) | version | licence | used by | files |
|---|---|---|---|---|
"""

_README_TAIL = """
Not shipped: jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers, which folium
loads by default; the jngis maps need none of them (markers are inline SVG pins, popups
plain Leaflet). Leaflet.VectorGrid is drawn with its SVG renderer: its canvas renderer calls
`L.DomEvent.fakeStop`, which Leaflet 1.8 removed.

To update a package: change its `version` in `manifest.json`, then
`python jngis/_assets/vendor/update.py --install NAME` (needs node and npm) and commit the
copied files, `manifest.json` and this README. `python jngis/_assets/vendor/update.py`
alone checks that every file matches its recorded sha256; the test suite does the same.
"""


def load() -> dict:
    """The manifest."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def root(spec: str) -> Path:
    """The folder ``package:folder`` names, found through the installed (or editable) package."""
    package, _, folder = spec.partition(":")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(f"{spec}: package {package!r} is not importable")
    return Path(list(found.submodule_search_locations)[0]) / folder


def files(manifest: dict) -> dict[str, Path]:
    """Every vendored file, keyed ``package/file`` as in the manifest's hashes."""
    return {f"{name}/{dest}": root(entry["root"]) / dest
            for name, entry in manifest["packages"].items() for dest in entry["copy"].values()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def readme(manifest: dict) -> str:
    """README.md as generated from the manifest."""
    rows = []
    for name, entry in manifest["packages"].items():
        listed = ", ".join(f"`{dest}`" for dest in entry["copy"].values())
        rows.append(f"| `{name}` | {entry['version']} | {entry['licence']} | {entry['used_by']} | "
                    f"`{entry['root']}`: {listed} |\n")
    hashes = "".join(f"{digest}  {key}\n" for key, digest in sorted(manifest["sha256"].items()))
    return _README_HEAD + "".join(rows) + "\nsha256 of the copied files:\n\n```\n" + hashes + "```\n" \
        + _README_TAIL


def problems(manifest: dict) -> list[str]:
    """What does not match: missing files, changed hashes, a stale README."""
    found = []
    for key, path in files(manifest).items():
        recorded = manifest["sha256"].get(key)
        if not path.is_file():
            found.append(f"{key}: missing ({path})")
        elif recorded != sha256(path):
            found.append(f"{key}: sha256 {sha256(path)} is not the recorded {recorded}")
    if not README.is_file() or README.read_text(encoding="utf-8") != readme(manifest):
        found.append("README.md is not what manifest.json generates (run update.py --write-readme)")
    return found


def install(manifest: dict, names: list[str]) -> None:
    """npm install the manifest's versions of ``names`` and copy their listed files."""
    unknown = sorted(set(names) - set(manifest["packages"]))
    if unknown:
        raise SystemExit(f"not in manifest.json: {unknown}")
    with tempfile.TemporaryDirectory() as temp:
        specs = [f"{name}@{manifest['packages'][name]['version']}" for name in names]
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", temp, *specs], check=True)
        for name in names:
            entry = manifest["packages"][name]
            source = Path(temp) / "node_modules" / name
            installed = json.loads((source / "package.json").read_text(encoding="utf-8"))["version"]
            if installed != entry["version"]:
                raise SystemExit(f"{name}: npm installed {installed}, manifest.json says {entry['version']}")
            for origin, dest in entry["copy"].items():
                target = root(entry["root"]) / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / origin, target)


def record(manifest: dict) -> None:
    """Rewrite the hashes in manifest.json and README.md from the files on disk."""
    manifest["sha256"] = {key: sha256(path) for key, path in sorted(files(manifest).items())}
    MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    README.write_text(readme(manifest), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", nargs="+", metavar="NAME", help="npm packages to copy again")
    parser.add_argument("--write-readme", action="store_true", help="regenerate README.md and the hashes")
    args = parser.parse_args(argv)
    manifest = load()
    if args.install:
        install(manifest, args.install)
    if args.install or args.write_readme:
        record(manifest)
    found = problems(load())
    print("\n".join(found) if found else f"{len(files(manifest))} vendored files match manifest.json")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
