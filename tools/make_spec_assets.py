#!/usr/bin/env python3
"""Regenerate the cached NWB schema documents that behavd embeds in every session file.

Run once by hand (not in CI) from the crate root, whenever the set of cached
namespaces changes:

    python3 tools/make_spec_assets.py            # writes src/record/spec/
    python3 tools/make_spec_assets.py --check    # regenerates into a temp dir, diffs, writes nothing

Needs python3 >= 3.10 with pip and venv, and access to PyPI. Takes about a minute.

What it produces
----------------
An NWB file carries the schema it was written against under ``/specifications``
(the root attribute ``.specloc`` is an object reference to that group):

    /specifications/<namespace>/<version>/<source>   scalar vlen UTF-8 string dataset, compact JSON

behavd writes four namespaces there: core 2.8.0, hdmf-common 1.8.0,
hdmf-experimental 0.5.0 and ndx-pose 0.4.0. This script writes each of those
strings to ``src/record/spec/<namespace>/<version>/<source>.json`` (byte for byte
the dataset value, no trailing newline) and generates ``src/record/spec/mod.rs``,
which embeds them with ``include_str!`` as ``SPEC_DOCUMENTS``.

How the strings are made (and why hdmf itself makes them)
---------------------------------------------------------
The cached JSON is *not* a plain YAML-to-JSON conversion of the schema files. hdmf's
writer (``HDF5IO.__cache_spec`` in ``hdmf/backends/hdf5/h5tools.py``) takes the
specs from the loaded namespace catalog, where includes have been resolved, and
re-serialises them through ``NamespaceToBuilderHelper.convert_namespace``
(``hdmf/backends/utils.py``) and ``NamespaceBuilder.export``
(``hdmf/spec/write.py``) into an ``H5SpecWriter`` (``hdmf/backends/hdf5/h5_utils.py``),
which stores ``json.dumps(spec, separators=(',', ':'))``. On the way:

* overridden sub-specs get the parent type's attributes merged in (e.g. every
  ``data`` dataset of a TimeSeries subtype carries conversion/offset/resolution/
  unit/continuity), ``required: false`` is normalised, empty lists are dropped,
  keys are re-ordered by the Spec constructors;
* the ``namespace`` document lists the schema as ``{"namespace": ...}`` /
  ``{"source": <file name without .yaml>}`` entries, without doc/title.

Re-implementing that normalisation is fragile, so this script lets the real
thing do it: it fetches the wheels with ``pip download --no-deps``
(pynwb 3.0.0 carrying core 2.8.0 under ``pynwb/nwb-schema/core/``, hdmf 4.3.1
carrying hdmf-common 1.8.0 and hdmf-experimental 0.5.0 under
``hdmf/common/hdmf-common-schema/common/``, and ndx-pose 0.4.0 carrying
``ndx_pose/spec/``), installs pynwb and hdmf from those wheel files into a
throw-away venv, loads the ndx-pose YAML from its wheel with
``pynwb.load_namespaces``, and runs hdmf's own ``convert_namespace``/``export``
with a writer that captures the strings ``H5SpecWriter.stringify`` would store.
That is exactly what ``NWBHDF5IO.write(..., cache_spec=True)`` caches under
pynwb 3.0.0 / hdmf 4.3.1 (the stack of "a lab with last year's install"). As a
self-check the script also writes a small NWB file with pynwb in that venv and
compares its ``/specifications`` with the captured strings.

(ndx-pose 0.4.0 declares ``pynwb>=4`` as a dependency, so its wheel is only
unpacked for its YAML, never installed.)
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

# Wheels to fetch: (distribution, version).
WHEELS = [("pynwb", "3.0.0"), ("hdmf", "4.3.1"), ("ndx-pose", "0.4.0")]

# Namespaces to cache, in the order they appear in SPEC_DOCUMENTS: (name, version).
NAMESPACES = [
    ("core", "2.8.0"),
    ("hdmf-common", "1.8.0"),
    ("hdmf-experimental", "0.5.0"),
    ("ndx-pose", "0.4.0"),
]

# Where each wheel keeps its schema YAML (checked to exist).
YAML_IN_WHEEL = {
    "core": "pynwb/nwb-schema/core/nwb.namespace.yaml",
    "hdmf-common": "hdmf/common/hdmf-common-schema/common/namespace.yaml",
    "hdmf-experimental": "hdmf/common/hdmf-common-schema/common/namespace.yaml",
    "ndx-pose": "ndx_pose/spec/ndx-pose.namespace.yaml",
}

CRATE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = CRATE_ROOT / "src" / "record" / "spec"


# ----------------------------------------------------------------------------------------------
# Stage 2: runs inside the throw-away venv (pynwb 3.0.0 + hdmf 4.3.1 installed from the wheels).
# ----------------------------------------------------------------------------------------------

def convert_in_venv(ndx_pose_namespace_yaml: str, result_path: str, verify_dir: str) -> None:
    """Load the namespaces and capture what hdmf's H5SpecWriter would store. Writes result JSON."""
    import hdmf
    import pynwb
    from hdmf.backends.hdf5.h5_utils import H5SpecWriter
    from hdmf.backends.utils import NamespaceToBuilderHelper
    from hdmf.spec.write import SpecWriter

    pynwb.load_namespaces(ndx_pose_namespace_yaml)
    catalog = pynwb.get_manager().namespace_catalog

    class CapturingWriter(SpecWriter):
        """Same payload as hdmf's H5SpecWriter, kept in a dict instead of HDF5 datasets."""

        def __init__(self):
            self.docs = {}  # name -> JSON string, in write order

        def write_spec(self, spec, path):
            self.docs[path] = H5SpecWriter.stringify(spec)

        def write_namespace(self, namespace, path):
            self.docs[path] = H5SpecWriter.stringify({"namespaces": [namespace]})

    result = {"pynwb": pynwb.__version__, "hdmf": hdmf.__version__, "namespaces": []}
    for name, version in NAMESPACES:
        ns = catalog.get_namespace(name)
        if ns.version != version:
            raise SystemExit(f"namespace {name}: loaded version {ns.version}, expected {version}")
        # The same two calls HDF5IO.__cache_spec makes; "namespace" is the dataset name it uses.
        builder = NamespaceToBuilderHelper.convert_namespace(catalog, name)
        writer = CapturingWriter()
        builder.export("namespace", writer=writer)
        # Stable order: the namespace document first, then the sources in schema order.
        order = ["namespace"] + [
            NamespaceToBuilderHelper.get_source_name(s["source"]) for s in ns.schema if "source" in s
        ]
        if sorted(order) != sorted(writer.docs):
            raise SystemExit(f"namespace {name}: unexpected documents {sorted(writer.docs)}")
        result["namespaces"].append(
            {"name": name, "version": version, "documents": [[d, writer.docs[d]] for d in order]}
        )

    if verify_dir:
        verify_against_pynwb_write(result, verify_dir)
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


def verify_against_pynwb_write(result: dict, workdir: str) -> None:
    """Write a minimal NWB file with cache_spec=True and compare /specifications byte for byte."""
    import datetime

    import h5py
    from pynwb import NWBFile, NWBHDF5IO

    path = os.path.join(workdir, "cache_check.nwb")
    nwb = NWBFile(
        session_description="spec cache check",
        identifier="spec-cache-check",
        session_start_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    )
    with NWBHDF5IO(path, "w") as io:
        io.write(nwb, cache_spec=True)
    with h5py.File(path, "r") as f:
        spec = f[f.attrs[".specloc"]]
        seen = set()
        for ns in result["namespaces"]:
            group = spec[f"{ns['name']}/{ns['version']}"]
            if set(group.keys()) != {d for d, _ in ns["documents"]}:
                raise SystemExit(f"verify: {ns['name']} has {sorted(group.keys())} in pynwb's file")
            for doc, text in ns["documents"]:
                cached = group[doc][()]
                cached = cached.decode("utf-8") if isinstance(cached, bytes) else cached
                if cached != text:
                    raise SystemExit(f"verify: {ns['name']}/{ns['version']}/{doc} differs from pynwb's cache")
            seen.add(ns["name"])
        extra = set(spec.keys()) - seen
        if extra:
            raise SystemExit(f"verify: pynwb cached namespaces not in our list: {sorted(extra)}")
    print(f"verified: identical to what pynwb {__import__('pynwb').__version__} caches", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Stage 1: the driver (any python3 with pip and venv).
# ----------------------------------------------------------------------------------------------

def run(cmd: list[str], **kw) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def fetch_wheels(tmp: Path) -> dict[str, Path]:
    """pip download --no-deps each wheel; return {distribution: wheel path}."""
    wheel_dir = tmp / "wheels"
    wheel_dir.mkdir()
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(wheel_dir)] + [f"{d}=={v}" for d, v in WHEELS])
    found = {}
    for dist, version in WHEELS:
        stem = dist.replace("-", "_")
        matches = list(wheel_dir.glob(f"{stem}-{version}-*.whl"))
        if len(matches) != 1:
            raise SystemExit(f"expected one wheel for {dist}=={version}, found {matches}")
        found[dist] = matches[0]
    return found


def unpack_yaml(wheels: dict[str, Path], tmp: Path) -> Path:
    """Extract every schema YAML file from the wheels into tmp/yaml/<dist>/..."""
    root = tmp / "yaml"
    for dist, wheel in wheels.items():
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                if member.endswith(".yaml"):
                    z.extract(member, root / dist)
    for ns, rel in YAML_IN_WHEEL.items():
        dist = {"core": "pynwb", "ndx-pose": "ndx-pose"}.get(ns, "hdmf")
        if not (root / dist / rel).is_file():
            raise SystemExit(f"{ns}: {rel} not found in the {dist} wheel")
    return root


def make_venv(wheels: dict[str, Path], tmp: Path) -> Path:
    """A venv with pynwb and hdmf installed from the downloaded wheel files (deps from PyPI)."""
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", str(wheels["pynwb"]), str(wheels["hdmf"])])
    return py


def check_installed_yaml_matches_wheels(py: Path, yaml_root: Path) -> None:
    """The venv's pynwb/hdmf load their bundled YAML: make sure it is the wheels' YAML."""
    out = subprocess.run(
        [str(py), "-c", "import pynwb, hdmf, os; print(os.path.dirname(pynwb.__file__)); "
                        "print(os.path.dirname(hdmf.__file__))"],
        check=True, capture_output=True, text=True).stdout.split()
    site = Path(out[0]).parent
    for dist in ("pynwb", "hdmf"):
        for f in (yaml_root / dist).rglob("*.yaml"):
            rel = f.relative_to(yaml_root / dist)
            if not filecmp.cmp(f, site / rel, shallow=False):
                raise SystemExit(f"installed {rel} differs from the wheel's copy")


def rust_module(namespaces: list[dict]) -> str:
    lines = [
        "//! Cached NWB schema documents, written to `/specifications` of every session file.",
        "//!",
        "//! GENERATED by `tools/make_spec_assets.py` — do not edit by hand; re-run the script instead.",
        "//!",
        "//! Each document is the compact JSON string that hdmf's own writer caches",
        "//! (`NWBHDF5IO.write(..., cache_spec=True)` with pynwb 3.0.0 / hdmf 4.3.1) for one schema",
        "//! source of one namespace. The writer stores each one as a scalar variable-length UTF-8",
        "//! string dataset at `/specifications/<namespace>/<version>/<name>`, and points the root",
        "//! attribute `.specloc` (an object reference) at `/specifications`.",
        "//!",
        "//! Namespaces: " + ", ".join(f"{n['name']} {n['version']}" for n in namespaces) + ".",
        "",
        "/// One cached schema document: stored at `/specifications/<namespace>/<version>/<name>`.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub struct SpecDocument {",
        "    /// Namespace name, e.g. `core`.",
        "    pub namespace: &'static str,",
        "    /// Namespace version, e.g. `2.8.0`.",
        "    pub version: &'static str,",
        "    /// Dataset name: `namespace` or the schema source file name without `.yaml`.",
        "    pub name: &'static str,",
        "    /// The dataset value: compact JSON, exactly as hdmf caches it.",
        "    pub json: &'static str,",
        "}",
        "",
        "/// Every cached document, in a stable order (namespace by namespace; within one, the",
        "/// `namespace` document first, then the sources in schema order).",
        "pub const SPEC_DOCUMENTS: &[SpecDocument] = &[",
    ]
    for ns in namespaces:
        for doc, _ in ns["documents"]:
            lines.append(
                f'    SpecDocument {{ namespace: "{ns["name"]}", version: "{ns["version"]}", name: "{doc}", '
                f'json: include_str!("{ns["name"]}/{ns["version"]}/{doc}.json") }},'
            )
    lines.append("];")
    lines.append("")
    return "\n".join(lines)


def write_assets(result: dict, out: Path) -> int:
    """Write <out>/<ns>/<version>/<doc>.json and <out>/mod.rs; return total JSON bytes."""
    total = 0
    for ns in result["namespaces"]:
        ns_dir = out / ns["name"]
        if ns_dir.exists():
            shutil.rmtree(ns_dir)  # drop documents or versions that are no longer generated
        (ns_dir / ns["version"]).mkdir(parents=True)
        for doc, text in ns["documents"]:
            data = text.encode("utf-8")
            (ns_dir / ns["version"] / f"{doc}.json").write_bytes(data)
            total += len(data)
    (out / "mod.rs").write_text(rust_module(result["namespaces"]), encoding="utf-8")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    ap.add_argument("--no-verify", action="store_true", help="skip the pynwb write-and-compare self-check")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dir (wheels, venv) for inspection")
    # Internal: stage 2, run by the driver inside the venv.
    ap.add_argument("--convert", nargs=3, metavar=("NDX_POSE_NS_YAML", "RESULT_JSON", "VERIFY_DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.convert:
        convert_in_venv(*args.convert)
        return

    tmp = Path(tempfile.mkdtemp(prefix="behavd-spec-"))
    try:
        wheels = fetch_wheels(tmp)
        yaml_root = unpack_yaml(wheels, tmp)
        py = make_venv(wheels, tmp)
        check_installed_yaml_matches_wheels(py, yaml_root)
        result_path = tmp / "result.json"
        verify_dir = "" if args.no_verify else str(tmp)
        run([str(py), str(Path(__file__).resolve()), "--convert",
             str(yaml_root / "ndx-pose" / YAML_IN_WHEEL["ndx-pose"]), str(result_path), verify_dir])
        result = json.loads(result_path.read_text(encoding="utf-8"))
        print(f"converted with pynwb {result['pynwb']}, hdmf {result['hdmf']}", file=sys.stderr)

        if args.check:
            fresh = tmp / "fresh"
            fresh.mkdir()
            write_assets(result, fresh)
            cmp = filecmp.dircmp(fresh, args.out)
            bad = []

            def walk(c, prefix=""):
                bad.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
                for sub, sc in c.subdirs.items():
                    walk(sc, prefix + sub + "/")

            walk(cmp)
            if bad:
                raise SystemExit("out of date: " + ", ".join(sorted(bad)))
            print(f"{args.out} is up to date", file=sys.stderr)
            return

        args.out.mkdir(parents=True, exist_ok=True)
        total = write_assets(result, args.out)
        n = sum(len(ns["documents"]) for ns in result["namespaces"])
        print(f"wrote {n} documents ({total} bytes of JSON) and mod.rs to {args.out}", file=sys.stderr)
    finally:
        if args.keep_temp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
