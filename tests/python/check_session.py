#!/usr/bin/env python3
"""Check one behavd session file and print ONE JSON object describing it.

Usage:
    check_session.py FILE [--swmr] [--no-extensions]

    FILE     a session file written by behavd (HDF5, NWB 2.8 layout; see
             tools/reference_layout_writer.py for the executable reference of that layout)
    --swmr   open the file the way a live reader (or a reader of a crashed SWMR
             writer) must: h5py.File(FILE, 'r', libver='latest', swmr=True), handed to
             pynwb as NWBHDF5IO(file=f). Without it, every section opens FILE by path.
    --no-extensions
             do not import the installed ndx_pose package; pynwb then generates the pose
             classes from the ndx-pose spec cached in the file (what a user without the
             extension gets).

The Rust integration tests run this (with the interpreter of a venv made from
tests/python/requirements.txt) and assert on the JSON. The exit status is 0 whenever a
JSON object could be produced, even if checks failed; it is 2 on usage errors and 1 if
h5py cannot open the file at all (a JSON object with "fatal" is still printed).

Output (a section that raised has "ok": false and "error"; if h5py cannot open the file,
only "file", "swmr", "extensions" and "fatal": str are present):

{
  "file": str, "swmr": bool,
  "extensions": {"ndx-pose": version|null},   # imported extension packages (null: not importable)
  "h5py": {
    "ok": bool, "error": str|null,
    "nwb_version": str|null,            # root attribute
    "image_series": [                   # groups in /acquisition typed ImageSeries/OnePhotonSeries
      {"name", "neurodata_type", "frames": len(data), "shape": [..], "dtype",
       "timestamps": len(timestamps)|null, "t_first", "t_last", "strictly_increasing",
       "min_dt", "max_dt", "fps_estimate"}],
    "time_series": [                    # every other group in /acquisition with a `data` dataset
      {"name", "neurodata_type", "rows": len(data), "shape": [..], "dtype", "timestamps": len|null}],
    "frame_gaps": null | [              # /intervals/FrameGaps, one entry per row
      {"stream_name", "stream_index", "start_time", "stop_time", "frames_lost", "cause",
       "cause_name", "first_lost_counter"}],  # cause: 0 device, 1 disconnected, 2 pool_exhausted,
                                              #        3 recorder_behind
    "data_collection": str|null,        # /general/data_collection
    "source_script": str|null,          # /general/source_script
    "structure": {"typed_objects": n, "soft_links": n,   # see check_structure(): typing attributes,
                  "problems": [str]}                      # links, colnames, column lengths
  },
  "pynwb": {"ok": bool, "error": str|null, "version": str, "acquisition_names": [..],
            "session_start_time": str|null, "subject_id": str|null,
            "processing": {module: [data interface names]},
            "intervals": {name: {"rows": n, "columns": [..]}},   # to_dataframe() of each table
            "warnings": [str]},                                 # warnings raised while reading
  "validator": {"ok": bool, "error": str|null, "errors": [str]},
  "inspector": {"ok": bool, "error": str|null, "version": str,
                "messages": [{"importance", "check_name", "object_path", "object_type",
                              "object_name", "message"}],
                "counts": {"ERROR": n, "PYNWB_VALIDATION": n, "CRITICAL": n,
                           "BEST_PRACTICE_VIOLATION": n, "BEST_PRACTICE_SUGGESTION": n}}
}

Floats that are NaN/inf are reported as null, so the output is strict JSON. Anything the
libraries print to stdout is diverted to stderr, so stdout carries only the JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import traceback
import warnings

IMAGE_TYPES = {"ImageSeries", "OnePhotonSeries"}
GAP_CAUSES = {0: "device", 1: "disconnected", 2: "pool_exhausted", 3: "recorder_behind"}
IMPORTANCE_NAMES = ["ERROR", "PYNWB_VALIDATION", "CRITICAL", "BEST_PRACTICE_VIOLATION", "BEST_PRACTICE_SUGGESTION"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def error_text(exc: BaseException) -> str:
    """One-line exception summary plus the innermost frame, enough to find the cause."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def plain(value):
    """Convert numpy scalars/arrays, bytes and non-finite floats into strict-JSON values."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def text(value):
    """A scalar string dataset/attribute value as str (h5py gives bytes for vlen datasets)."""
    if value is None:
        return None
    if hasattr(value, "shape") and getattr(value, "shape", None) == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def open_h5(path: str, swmr: bool):
    import h5py

    if swmr:
        return h5py.File(path, "r", libver="latest", swmr=True)
    return h5py.File(path, "r")


# ---------------------------------------------------------------------------------------------
# section 1: raw HDF5 view (h5py only)
# ---------------------------------------------------------------------------------------------

def timestamp_stats(ts) -> dict:
    import numpy as np

    t = np.asarray(ts[()], dtype=np.float64)
    out = {"timestamps": int(t.shape[0]), "t_first": None, "t_last": None, "strictly_increasing": None,
           "min_dt": None, "max_dt": None, "fps_estimate": None}
    if t.shape[0] == 0:
        return out
    out["t_first"] = float(t[0])
    out["t_last"] = float(t[-1])
    if t.shape[0] >= 2:
        dt = np.diff(t)
        out["strictly_increasing"] = bool(np.all(dt > 0))
        out["min_dt"] = float(dt.min())
        out["max_dt"] = float(dt.max())
        span = float(t[-1] - t[0])
        out["fps_estimate"] = (t.shape[0] - 1) / span if span > 0 else None
    else:
        out["strictly_increasing"] = True
    return out


def read_frame_gaps(f, table) -> list:
    """Rows of the FrameGaps TimeIntervals table, with `stream` resolved to its stream_name."""
    import numpy as np

    n = len(table["id"])
    cols = {}
    for c in ("start_time", "stop_time", "stream", "frames_lost", "cause", "first_lost_counter"):
        cols[c] = table[c][()] if c in table else None
        if cols[c] is not None:
            n = min(n, len(cols[c]))  # a live file can show columns of different lengths
    names = None
    if "stream" in table:
        target = f[table["stream"].attrs["table"]]  # @table is an object reference
        names = [text(s) for s in target["stream_name"][()]]
    rows = []
    for i in range(n):
        idx = int(cols["stream"][i]) if cols["stream"] is not None else None
        cause = int(cols["cause"][i]) if cols["cause"] is not None else None
        rows.append({
            "stream_name": names[idx] if names is not None and idx is not None and 0 <= idx < len(names) else None,
            "stream_index": idx,
            "start_time": float(cols["start_time"][i]) if cols["start_time"] is not None else None,
            "stop_time": float(cols["stop_time"][i]) if cols["stop_time"] is not None else None,
            "frames_lost": int(cols["frames_lost"][i]) if cols["frames_lost"] is not None else None,
            "cause": cause,
            "cause_name": GAP_CAUSES.get(cause) if cause is not None else None,
            "first_lost_counter": (int(np.uint64(cols["first_lost_counter"][i]))
                                   if cols["first_lost_counter"] is not None else None),
        })
    return rows


def check_structure(f, live: bool = False) -> dict:
    """Things none of pynwb, the validator and nwbinspector catch, but a hand-written writer can get wrong.

    * every typed object (outside /specifications) has neurodata_type, namespace and a UUID object_id,
      and no object_id is used twice;
    * every soft link resolves;
    * every DynamicTable's colnames names existing datasets, and every VectorData/DynamicTableRegion
      child is listed in colnames (pynwb silently drops unlisted columns from to_dataframe());
    * every column of a table has as many rows as its id; with live=True (--swmr) only fewer rows
      is a problem, since the writer appends `id` last and a reader may see a row half-appended.
    """
    import uuid

    import h5py

    problems, seen_ids, typed_count, links = [], {}, 0, 0

    def visit(name, link):
        nonlocal typed_count, links
        if name.startswith("specifications"):
            return
        if isinstance(link, h5py.SoftLink):
            links += 1
            if f.get(name) is None:
                problems.append(f"/{name}: soft link to {link.path} does not resolve")
            return
        if not isinstance(link, h5py.HardLink):
            return
        obj = f[name]
        attrs = obj.attrs
        if "neurodata_type" not in attrs:
            return
        typed_count += 1
        for key in ("namespace", "object_id"):
            if key not in attrs:
                problems.append(f"/{name}: typed object without @{key}")
        oid = text(attrs.get("object_id"))
        if oid is not None:
            try:
                uuid.UUID(oid)
            except ValueError:
                problems.append(f"/{name}: @object_id {oid!r} is not a UUID")
            if oid in seen_ids:
                problems.append(f"/{name}: @object_id {oid} also used by {seen_ids[oid]}")
            seen_ids[oid] = "/" + name
        if isinstance(obj, h5py.Group) and "colnames" in attrs and "id" in obj:
            colnames = [text(c) for c in attrs["colnames"]]
            n_id = len(obj["id"])
            for c in colnames:
                if c not in obj:
                    problems.append(f"/{name}: colnames lists {c!r}, which does not exist")
                elif isinstance(obj[c], h5py.Dataset) and obj[c].shape and not (c + "_index") in obj \
                        and (len(obj[c]) < n_id or (not live and len(obj[c]) != n_id)):
                    problems.append(f"/{name}/{c}: {len(obj[c])} rows, id has {n_id}")
            for child in obj:
                ndt = text(obj[child].attrs.get("neurodata_type"))
                if ndt in ("VectorData", "DynamicTableRegion", "VectorIndex") and child not in colnames \
                        and not child.endswith("_index"):
                    problems.append(f"/{name}/{child}: column not listed in @colnames")

    names = []
    if hasattr(f, "visit_links"):  # h5py >= 3.11: every link once, soft links included
        f.visit_links(names.append)
    else:  # older h5py: objects only, soft links are not checked
        f.visit(names.append)
    for name in names:
        visit(name, f.get(name, getlink=True))
    # visit_links does not report the root group itself
    if "neurodata_type" not in f.attrs or "object_id" not in f.attrs:
        problems.append("/: root lacks @neurodata_type or @object_id")
    return {"typed_objects": typed_count + 1, "soft_links": links, "problems": problems}


def check_h5py(f, live: bool = False) -> dict:
    import h5py

    out = {"ok": True, "error": None, "nwb_version": None, "image_series": [], "time_series": [],
           "frame_gaps": None, "data_collection": None, "source_script": None, "structure": None}
    errors = []
    try:
        out["structure"] = check_structure(f, live)
    except Exception as e:  # noqa: BLE001
        errors.append("structure: " + error_text(e))
    try:
        out["nwb_version"] = text(f.attrs.get("nwb_version"))
    except Exception as e:  # noqa: BLE001 - report, don't crash
        errors.append("nwb_version: " + error_text(e))

    acq = f.get("acquisition")
    for name in (acq.keys() if acq is not None else []):
        try:
            obj = acq[name]
            if not isinstance(obj, h5py.Group):
                continue
            ndt = text(obj.attrs.get("neurodata_type"))
            if "data" not in obj or not isinstance(obj["data"], h5py.Dataset):
                continue  # tables and other non-TimeSeries groups
            data = obj["data"]
            ts = obj.get("timestamps")
            if ndt in IMAGE_TYPES:
                entry = {"name": name, "neurodata_type": ndt, "frames": int(data.shape[0]) if data.shape else 0,
                         "shape": list(data.shape), "dtype": str(data.dtype)}
                if ts is not None:
                    entry.update(timestamp_stats(ts))
                else:
                    entry.update({"timestamps": None, "t_first": None, "t_last": None,
                                  "strictly_increasing": None, "min_dt": None, "max_dt": None,
                                  "fps_estimate": None})
                out["image_series"].append(entry)
            else:
                out["time_series"].append({"name": name, "neurodata_type": ndt,
                                           "rows": int(data.shape[0]) if data.shape else 0,
                                           "shape": list(data.shape), "dtype": str(data.dtype),
                                           "timestamps": len(ts) if ts is not None else None})
        except Exception as e:  # noqa: BLE001
            errors.append(f"acquisition/{name}: " + error_text(e))

    try:
        if "intervals/FrameGaps" in f:
            out["frame_gaps"] = read_frame_gaps(f, f["intervals/FrameGaps"])
    except Exception as e:  # noqa: BLE001
        errors.append("intervals/FrameGaps: " + error_text(e))
    for key in ("data_collection", "source_script"):
        try:
            if f"general/{key}" in f:
                out[key] = text(f[f"general/{key}"])
        except Exception as e:  # noqa: BLE001
            errors.append(f"general/{key}: " + error_text(e))

    if errors:
        out["ok"] = False
        out["error"] = "; ".join(errors)
    return out


# ---------------------------------------------------------------------------------------------
# section 2: pynwb read
# ---------------------------------------------------------------------------------------------

def touch_container(obj) -> None:
    """Access what a user would: shapes, timestamps, the last frame/row of series, table contents."""
    from hdmf.common import DynamicTable
    from pynwb import TimeSeries
    from pynwb.image import ImageSeries

    if isinstance(obj, TimeSeries):
        data = obj.data
        n = len(data)
        if n:
            _ = data[n - 1]  # for image series: decompress the last frame
        if obj.timestamps is not None:
            ts = obj.timestamps
            _ = ts[len(ts) - 1] if len(ts) else None
        _ = (obj.unit, obj.conversion, obj.description)
        if isinstance(obj, ImageSeries):
            _ = (obj.device, obj.format, obj.dimension)
        if hasattr(obj, "imaging_plane"):
            _ = obj.imaging_plane.device
    elif isinstance(obj, DynamicTable):
        obj.to_dataframe()
    elif hasattr(obj, "data_interfaces"):  # ProcessingModule
        for sub in obj.data_interfaces.values():
            touch_container(sub)
    elif hasattr(obj, "children"):
        for sub in obj.children:
            touch_container(sub)


def check_pynwb(path: str, swmr: bool) -> dict:
    import pynwb
    from pynwb import NWBHDF5IO

    out = {"ok": False, "error": None, "version": pynwb.__version__, "acquisition_names": [],
           "session_start_time": None, "subject_id": None, "processing": {}, "intervals": {}, "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if swmr:
                f = open_h5(path, swmr=True)
                io = NWBHDF5IO(file=f, mode="r")
            else:
                f = None
                io = NWBHDF5IO(path, "r")
            try:
                nwb = io.read()
                out["acquisition_names"] = sorted(nwb.acquisition.keys())
                out["session_start_time"] = nwb.session_start_time.isoformat() if nwb.session_start_time else None
                out["subject_id"] = nwb.subject.subject_id if nwb.subject is not None else None
                out["processing"] = {name: sorted(m.data_interfaces.keys()) for name, m in nwb.processing.items()}
                for obj in nwb.acquisition.values():
                    touch_container(obj)
                for module in nwb.processing.values():
                    touch_container(module)
                for name, table in nwb.intervals.items():
                    df = table.to_dataframe()
                    out["intervals"][name] = {"rows": len(df), "columns": list(df.columns)}
                _ = (nwb.devices, nwb.imaging_planes, nwb.data_collection, nwb.source_script)
                out["ok"] = True
            finally:
                io.close()
                if f is not None:
                    f.close()
        except Exception as e:  # noqa: BLE001
            out["error"] = error_text(e)
    out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return out


# ---------------------------------------------------------------------------------------------
# section 3: PyNWB schema validation against the namespaces cached in the file
# ---------------------------------------------------------------------------------------------

def check_validator(path: str, swmr: bool) -> dict:
    import pynwb

    out = {"ok": False, "error": None, "errors": []}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not swmr:
                errors = pynwb.validate(path=path, use_cached_namespaces=True)
            else:
                errors = validate_swmr(path)
        if isinstance(errors, tuple):  # pynwb < 3 returned (errors, status)
            errors = errors[0]
        out["errors"] = [str(e) for e in errors]
        out["ok"] = True
    except Exception as e:  # noqa: BLE001
        out["error"] = error_text(e)
    return out


def validate_swmr(path: str) -> list:
    """What pynwb.validate(path=..., use_cached_namespaces=True) does, on an SWMR-opened file."""
    import pynwb
    from hdmf.build import BuildManager, TypeMap
    from hdmf.spec import NamespaceCatalog
    from pynwb import NWBHDF5IO
    from pynwb.spec import NWBDatasetSpec, NWBGroupSpec, NWBNamespace

    f = open_h5(path, swmr=True)
    try:
        catalog = NamespaceCatalog(group_spec_cls=NWBGroupSpec, dataset_spec_cls=NWBDatasetSpec,
                                   spec_namespace_cls=NWBNamespace)
        deps = NWBHDF5IO.load_namespaces(namespace_catalog=catalog, file=f)
        candidates = set(deps)
        for d in deps:
            candidates -= set(deps[d])
        candidates.discard("hdmf-experimental")  # as pynwb does (pynwb issue 1357)
        if not candidates:
            io = NWBHDF5IO(file=f, mode="r")
            candidates = {"core"}
        else:
            io = NWBHDF5IO(file=f, mode="r", manager=BuildManager(TypeMap(namespaces=catalog)))
        errors = []
        for ns in sorted(candidates):
            errors += pynwb.validate(io=io, namespace=ns)
        io.close()
        return errors
    finally:
        f.close()


# ---------------------------------------------------------------------------------------------
# section 4: nwbinspector, all importance levels
# ---------------------------------------------------------------------------------------------

def check_inspector(path: str, swmr: bool) -> dict:
    out = {"ok": False, "error": None, "version": None, "messages": [],
           "counts": {name: 0 for name in IMPORTANCE_NAMES}}
    try:
        import nwbinspector
        from nwbinspector import inspect_nwbfile, inspect_nwbfile_object

        out["version"] = getattr(nwbinspector, "__version__", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not swmr:
                messages = list(inspect_nwbfile(nwbfile_path=path, importance_threshold="BEST_PRACTICE_SUGGESTION"))
            else:
                # inspect_nwbfile opens by path, which fails while an SWMR writer holds the file (or after it
                # crashed): inspect the object read through the SWMR handle instead (no PYNWB_VALIDATION rows
                # then; the validator section covers those).
                from pynwb import NWBHDF5IO

                f = open_h5(path, swmr=True)
                try:
                    with NWBHDF5IO(file=f, mode="r") as io:
                        nwb = io.read()
                        messages = list(inspect_nwbfile_object(nwbfile_object=nwb,
                                                               importance_threshold="BEST_PRACTICE_SUGGESTION"))
                finally:
                    f.close()
        for m in messages:
            if m is None:
                continue
            imp = m.importance.name if hasattr(m.importance, "name") else str(m.importance)
            out["messages"].append({"importance": imp, "check_name": m.check_function_name,
                                    "object_path": m.location, "object_type": m.object_type,
                                    "object_name": m.object_name, "message": m.message})
            out["counts"][imp] = out["counts"].get(imp, 0) + 1
        out["ok"] = True
    except Exception as e:  # noqa: BLE001
        out["error"] = error_text(e)
    return out


# ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description="Check a behavd session file; print one JSON object.")
    ap.add_argument("file", help="session file (.nwb)")
    ap.add_argument("--swmr", action="store_true", help="open in SWMR read mode (live or crashed writer)")
    ap.add_argument("--no-extensions", action="store_true",
                    help="do not import ndx_pose: pynwb then builds the pose classes from the cached spec")
    args = ap.parse_args()

    report = {"file": args.file, "swmr": args.swmr, "extensions": {}}
    rc = 0
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON only
        if not args.no_extensions:
            try:
                from importlib.metadata import version

                import ndx_pose  # noqa: F401 - registers the installed ndx-pose classes with pynwb

                report["extensions"]["ndx-pose"] = version("ndx-pose")
            except Exception as e:  # noqa: BLE001 - not installed: the cached spec still works
                report["extensions"]["ndx-pose"] = None
                print(f"ndx_pose not imported: {error_text(e)}", file=sys.stderr)
        try:
            f = open_h5(args.file, args.swmr)
        except Exception as e:  # noqa: BLE001 - the one fatal case
            report["fatal"] = "h5py cannot open the file: " + error_text(e)
            rc = 1
        else:
            try:
                report["h5py"] = check_h5py(f, args.swmr)
            except Exception as e:  # noqa: BLE001
                report["h5py"] = {"ok": False, "error": error_text(e)}
            finally:
                f.close()
            report["pynwb"] = check_pynwb(args.file, args.swmr)
            report["validator"] = check_validator(args.file, args.swmr)
            report["inspector"] = check_inspector(args.file, args.swmr)
    real_stdout.write(json.dumps(plain(report), allow_nan=False, indent=1) + "\n")
    real_stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
