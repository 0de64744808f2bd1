"""A sweep's results file: tidy rows (:mod:`.rows`) as Parquet (pyarrow), written
atomically, stamped with ppsize's version and this format's number in the file's
metadata. A file of another version is refused (or, asked to, set aside), never
mixed with this version's cells. Needs the ``sweep`` extra (pandas, pyarrow)."""
from __future__ import annotations

import os

from .rows import STATUS_DONE, ratios
from .spec import CELL_PARAMS

__all__ = ["read_results", "write_results", "open_for_resume", "to_frame", "ResultsVersionError",
           "FORMAT", "FIRST_COLUMNS"]

FORMAT = "1"                         # the layout of the rows; bump when columns change meaning
_META_VERSION = b"ppsize_version"
_META_FORMAT = b"ppsize_sweep_format"
FIRST_COLUMNS = CELL_PARAMS + ("process", "status", "error", "cell_key", "ppsize_version",
                               "cell_started", "cell_seconds", "cell_cpu_seconds", "worker", "ratio")


class ResultsVersionError(ValueError):
    """A results file written by another ppsize version (or format) or not by a sweep."""


def _meta(path) -> dict:
    import pyarrow.parquet as pq
    try:
        meta = pq.read_schema(path).metadata or {}
    except OSError as e:
        raise ResultsVersionError(f"{path}: not a Parquet file ({e})") from None
    if _META_VERSION not in meta:
        raise ResultsVersionError(f"{path}: not a ppsize sweep results file (no ppsize_version "
                                  f"in its metadata)")
    return {"version": meta[_META_VERSION].decode(), "format": meta.get(_META_FORMAT, b"?").decode()}


def read_results(path):
    """The rows of a results file as a pandas DataFrame (``attrs["ppsize_version"]``:
    the version that wrote it)."""
    import pandas as pd
    meta = _meta(path)
    df = pd.read_parquet(path, engine="pyarrow")
    df.attrs["ppsize_version"] = meta["version"]
    return df


def open_for_resume(path, version, archive=False):
    """The rows already in ``path`` (None if there is no file), for resuming a sweep
    of ppsize ``version``. A file of another version or format raises
    :class:`ResultsVersionError` naming both, unless ``archive``: then it is renamed
    to ``<name>.v<its version><ext>`` and the sweep starts afresh (returns None)."""
    if not os.path.exists(path):
        return None
    meta = _meta(path)
    if meta["version"] == version and meta["format"] == FORMAT:
        return read_results(path)
    if not archive:
        raise ResultsVersionError(
            f"{path} holds results of ppsize {meta['version']} (format {meta['format']}), this is "
            f"ppsize {version} (format {FORMAT}): its cells would be mixed with another model's; "
            f"move it away, or archive it and start afresh (--archive)")
    stem, ext = os.path.splitext(path)
    dest, n = f"{stem}.v{meta['version']}{ext}", 1
    while os.path.exists(dest):
        dest, n = f"{stem}.v{meta['version']}-{n}{ext}", n + 1
    os.replace(path, dest)
    return None


def to_frame(rows, existing=None):
    """A DataFrame of ``rows`` (dicts) appended to ``existing``, the cell
    parameters and bookkeeping first, ``ratio`` recomputed over all the rows, and
    the figures of done rows' outcome counters filled with 0 where absent."""
    import pandas as pd
    frames = [f for f in (existing, pd.DataFrame.from_records(rows) if rows else None) if f is not None]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else
                                                                        pd.DataFrame(columns=FIRST_COLUMNS))
    for c in FIRST_COLUMNS:
        if c not in df.columns:
            df[c] = None
    if len(df):
        need = list(dict.fromkeys(("config", "status", "total_kB") + CELL_PARAMS))
        df["ratio"] = ratios(df[[c for c in need if c in df.columns]].to_dict("records")) \
            if "total_kB" in df.columns else float("nan")
        done = df["status"] == STATUS_DONE
        for c in df.columns:
            if c.startswith("outcomes."):
                df.loc[done, c] = df.loc[done, c].fillna(0)
    rest = [c for c in df.columns if c not in FIRST_COLUMNS]
    return df[list(FIRST_COLUMNS) + rest]


def write_results(path, df, version) -> None:
    """Write ``df`` to ``path`` atomically (a temporary file renamed over it), with
    ppsize's ``version`` and the format in the Parquet metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_VERSION] = version.encode()
    meta[_META_FORMAT] = FORMAT.encode()
    table = table.replace_schema_metadata(meta)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
