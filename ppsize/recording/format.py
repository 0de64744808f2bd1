"""The ppsize recording file: one container for snapshots and recordings (``.ppw``).

A recording is a small header, NumPy arrays stored raw one after another (each 64-byte
aligned, so readers memory-map them without a copy) and, at the end, a table of contents
with one JSON metadata object::

    offset 0      header (64 bytes)
                    magic        8 bytes  b"PPSIZEW\\x00"
                    version      u32      format version (FORMAT_VERSION)
                    header_size  u32      64
                    kind         16 bytes ASCII, NUL-padded ("snapshot", "record")
                    created_ns   u64      time.time_ns() when writing started
                    writer       24 bytes ASCII, NUL-padded ("ppsize 0.1.0")
    64 ...        sections: raw array bytes (little-endian scalars; structured dtypes as their
                  descr says), each starting at a multiple of 64
    toc_offset    table of contents: UTF-8 JSON
                    {"sections": [{"name", "dtype" (numpy descr), "shape", "offset",
                                   "nbytes", "crc32"}, ...],
                     "meta": {...}}
    end - 40      trailer (40 bytes)
                    end magic    8 bytes  b"PPSZTOC\\x00"
                    toc_offset   u64
                    toc_nbytes   u64
                    toc_crc32    u32
                    version      u32      (again)
                    reserved     u64

The table of contents is written last, so arrays of unknown length (an access trace)
are streamed straight to disk; a file is written as ``PATH.part`` and renamed when
complete, and a file without its trailer is reported as truncated. Every section has a
CRC-32 that readers check (lazily, on the first access of that array).

Versioning: FORMAT_VERSION is the container and schema version. Readers accept exactly
the versions in SUPPORTED_VERSIONS and name the version otherwise; sections a reader does
not know are ignored, so a writer may add sections without a version change, but changing
the meaning or dtype of an existing section needs a new version. What the sections of a
workload mean (processes, VMAs, pages, files, events) is documented in
``ppsize.recording.schema``.
"""
from __future__ import annotations

import json
import os
import struct
import time
import zlib

import numpy as np
from numpy.lib import format as npformat

__all__ = ["MAGIC", "END_MAGIC", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "RecordingError",
           "NotARecording", "TruncatedRecording", "CorruptRecording", "UnsupportedVersion",
           "Writer", "Reader"]

MAGIC = b"PPSIZEW\x00"
END_MAGIC = b"PPSZTOC\x00"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
ALIGN = 64
_HEADER = struct.Struct("<8sII16sQ24s")        # 64 bytes
_TRAILER = struct.Struct("<8sQQIIQ")           # 40 bytes
assert _HEADER.size == 64 and _TRAILER.size == 40
_CRC_CHUNK = 64 << 20

# a few signatures of files people mistake for recordings, for a better message
_FOREIGN = {b"PK\x03\x04": "a zip archive (an .npz file?)", b"\x93NUMPY": "a NumPy .npy file",
            b"PERFILE2": "a perf.data file (run `ppsize record` instead)",
            b"\x7fELF": "an ELF binary", b"\x1f\x8b": "a gzip file"}


class RecordingError(ValueError):
    """A file that is not a complete, intact recording this ppsize can read.
    ``path`` names the file and ``problem`` says what was wrong."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NotARecording(RecordingError):
    """The file does not start with the recording magic."""


class TruncatedRecording(RecordingError):
    """The file ends early (no trailer, or a section or the table runs past the end)."""


class CorruptRecording(RecordingError):
    """A checksum does not match or the table of contents is inconsistent."""


class UnsupportedVersion(RecordingError):
    """Written in a format version this ppsize does not read."""


def _pad(s: str, n: int) -> bytes:
    b = s.encode("ascii")
    if len(b) > n:
        raise ValueError(f"{s!r} is longer than {n} bytes")
    return b.ljust(n, b"\0")


def _crc(buf, crc=0) -> int:
    mv = memoryview(buf).cast("B")
    for i in range(0, len(mv), _CRC_CHUNK):
        crc = zlib.crc32(mv[i:i + _CRC_CHUNK], crc)
    return crc


def _le(dtype: np.dtype) -> np.dtype:
    """The little-endian form of a dtype (all sections are little-endian)."""
    return np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)


class _Stream:
    """An array section of unknown length: ``append`` chunks of ``dtype``, then ``close``."""

    def __init__(self, writer, name, dtype):
        self._w, self.name, self.dtype = writer, name, _le(dtype)
        if self.dtype.hasobject:
            raise TypeError(f"section {name!r}: object dtypes cannot be stored")
        self.offset = writer._align()
        self.count = 0
        self._crc = 0
        self.closed = False

    def append(self, chunk) -> None:
        if self.closed:
            raise ValueError(f"section {self.name!r} is already closed")
        a = np.ascontiguousarray(chunk, dtype=self.dtype)
        if a.ndim != 1:
            raise ValueError(f"section {self.name!r}: append 1-d chunks, got shape {a.shape}")
        self._crc = _crc(a, self._crc)
        self._w._f.write(memoryview(a).cast("B"))
        self.count += len(a)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._w._sections.append({
                "name": self.name, "dtype": npformat.dtype_to_descr(self.dtype),
                "shape": [self.count], "offset": self.offset,
                "nbytes": self.count * self.dtype.itemsize, "crc32": self._crc})
            self._w._stream = None


class Writer:
    """Write a recording: ``add`` whole arrays, ``stream`` arrays of unknown length (one
    at a time), ``meta`` (a JSON-serialisable dict) and ``close``. A context manager; on
    an exception the partial ``PATH.part`` is removed and PATH is left untouched."""

    def __init__(self, path, kind: str, meta: dict | None = None):
        self.path = os.fspath(path)
        self.kind = kind
        self.meta = dict(meta or {})
        self._tmp = self.path + ".part"
        self._f = open(self._tmp, "wb")
        self._sections: list[dict] = []
        self._names: set[str] = set()
        self._stream: _Stream | None = None
        from .. import __version__
        self._f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, _HEADER.size, _pad(kind, 16),
                                   time.time_ns(), _pad(f"ppsize {__version__}", 24)))

    def _align(self) -> int:
        pos = self._f.tell()
        pad = -pos % ALIGN
        if pad:
            self._f.write(b"\0" * pad)
        return pos + pad

    def _claim(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad section name {name!r}")
        if name in self._names:
            raise ValueError(f"section {name!r} written twice")
        if self._stream is not None:
            raise ValueError(f"section {self._stream.name!r} is still being streamed")
        self._names.add(name)

    def add(self, name: str, array) -> None:
        """Store a whole array (any shape, any non-object dtype) as section ``name``."""
        self._claim(name)
        a = np.asarray(array)
        a = np.ascontiguousarray(a, dtype=_le(a.dtype))
        if a.dtype.hasobject:
            raise TypeError(f"section {name!r}: object dtypes cannot be stored")
        offset = self._align()
        self._f.write(memoryview(a.reshape(-1)).cast("B"))
        self._sections.append({"name": name, "dtype": npformat.dtype_to_descr(a.dtype),
                               "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes,
                               "crc32": _crc(a.reshape(-1))})

    def stream(self, name: str, dtype) -> _Stream:
        """Open section ``name`` of 1-d records of ``dtype``; append chunks, then close it."""
        self._claim(name)
        self._stream = _Stream(self, name, dtype)
        return self._stream

    def close(self) -> None:
        if self._f.closed:
            return
        if self._stream is not None:
            self._stream.close()
        toc = json.dumps({"sections": self._sections, "meta": self.meta},
                         separators=(",", ":"), allow_nan=False).encode()
        offset = self._align()
        self._f.write(toc)
        self._f.write(_TRAILER.pack(END_MAGIC, offset, len(toc), zlib.crc32(toc), FORMAT_VERSION, 0))
        self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class Reader:
    """Open a recording: check the header, trailer and table of contents at once, each
    section's CRC on its first ``array(name)`` (when ``verify``). Arrays are read-only
    memory maps of the file (or copies with ``mmap=False``). Raises a RecordingError
    subclass naming the file and the problem; OSError if the file cannot be opened."""

    def __init__(self, path, verify: bool = True, mmap: bool = True):
        self.path = os.fspath(path)
        self.verify = verify
        self._mmap = mmap
        self._cache: dict[str, np.ndarray] = {}
        with open(self.path, "rb") as f:
            head = f.read(_HEADER.size)
            if not head.startswith(MAGIC):
                what = next((d for sig, d in _FOREIGN.items() if head.startswith(sig)), None)
                if not head:
                    raise NotARecording(self.path, "empty file, not a ppsize recording")
                raise NotARecording(self.path, "not a ppsize recording" + (
                    f" (it looks like {what})" if what else f" (starts with {head[:8]!r})"))
            if len(head) < _HEADER.size:
                raise TruncatedRecording(self.path, f"truncated in the header ({len(head)} bytes)")
            _, version, hsize, kind, created, writer = _HEADER.unpack(head)
            self._check_version(version)
            if hsize != _HEADER.size:
                raise CorruptRecording(self.path, f"header size {hsize}, expected {_HEADER.size}")
            self.version = version
            self.kind = kind.rstrip(b"\0").decode("ascii", "replace")
            self.created_ns = created
            self.writer = writer.rstrip(b"\0").decode("ascii", "replace")
            size = os.fstat(f.fileno()).st_size
            if size < _HEADER.size + _TRAILER.size:
                raise TruncatedRecording(self.path, f"truncated: {size} bytes, no table of contents")
            f.seek(size - _TRAILER.size)
            end, toc_off, toc_len, toc_crc, version2, _ = _TRAILER.unpack(f.read(_TRAILER.size))
            if end != END_MAGIC:
                raise TruncatedRecording(self.path, f"truncated or still being written: no end "
                                         f"marker in the last {_TRAILER.size} bytes ({size} bytes)")
            if version2 != version:
                raise CorruptRecording(self.path, f"header says format version {version}, "
                                       f"trailer says {version2}")
            if toc_off + toc_len != size - _TRAILER.size or toc_off < _HEADER.size:
                raise CorruptRecording(self.path, f"table of contents at {toc_off} (+{toc_len}) "
                                       f"does not end at the trailer ({size - _TRAILER.size})")
            f.seek(toc_off)
            raw = f.read(toc_len)
        if zlib.crc32(raw) != toc_crc:
            raise CorruptRecording(self.path, "table of contents checksum mismatch")
        try:
            toc = json.loads(raw)
            self.meta = toc["meta"]
            self._sections = {s["name"]: s for s in toc["sections"]}
            for s in self._sections.values():
                s["_dtype"] = npformat.descr_to_dtype(_tuples(s["dtype"]))
                if (s["offset"] < _HEADER.size or s["offset"] + s["nbytes"] > toc_off
                        or s["nbytes"] != int(np.prod(s["shape"], dtype=np.int64)) * s["_dtype"].itemsize):
                    raise ValueError(f"section {s['name']!r} has bad bounds")
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptRecording(self.path, f"bad table of contents: {e}") from None
        self._size = size

    def _check_version(self, version):
        if version in SUPPORTED_VERSIONS:
            return
        if version > max(SUPPORTED_VERSIONS):
            raise UnsupportedVersion(self.path, f"format version {version} was written by a newer "
                                     f"ppsize; this one reads version {FORMAT_VERSION}")
        raise UnsupportedVersion(self.path, f"format version {version} is not supported "
                                 f"(this ppsize reads version {FORMAT_VERSION})")

    @property
    def names(self) -> list[str]:
        return list(self._sections)

    def __contains__(self, name) -> bool:
        return name in self._sections

    def info(self, name) -> dict:
        """dtype, shape, nbytes of a section without reading it."""
        s = self._section(name)
        return {"dtype": s["_dtype"], "shape": tuple(s["shape"]), "nbytes": s["nbytes"]}

    def _section(self, name):
        try:
            return self._sections[name]
        except KeyError:
            raise KeyError(f"{self.path}: no section {name!r} (has {', '.join(self._sections)})") from None

    def array(self, name) -> np.ndarray:
        """Section ``name`` as a read-only array (checked against its CRC the first time)."""
        if name in self._cache:
            return self._cache[name]
        s = self._section(name)
        shape, dtype = tuple(s["shape"]), s["_dtype"]
        if s["nbytes"] == 0:
            a = np.zeros(shape, dtype=dtype)
        elif self._mmap:
            a = np.memmap(self.path, dtype=dtype, mode="r", offset=s["offset"], shape=shape)
        else:
            a = np.fromfile(self.path, dtype=dtype, count=int(np.prod(shape)), offset=s["offset"]).reshape(shape)
        if self.verify and _crc(a.reshape(-1) if a.size else b"") != s["crc32"]:
            raise CorruptRecording(self.path, f"section {name!r}: checksum mismatch (the data is damaged)")
        a = a.view(np.ndarray) if isinstance(a, np.memmap) else a
        a.flags.writeable = False
        self._cache[name] = a
        return a

    def get(self, name, default=None):
        return self.array(name) if name in self._sections else default


def _tuples(descr):
    """JSON turned the descr's tuples into lists; numpy wants tuples back."""
    if isinstance(descr, str):
        return descr
    out = []
    for name, typ, *shape in descr:
        name = tuple(name) if isinstance(name, list) else name
        typ = _tuples(typ)
        out.append((name, typ, tuple(shape[0])) if shape else (name, typ))
    return out
