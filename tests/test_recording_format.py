"""The recording container (ppsize.recording.format): round trips, streaming, and every
kind of bad file: truncated, corrupt, foreign, another version."""
import json
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppsize.cli import main
from ppsize.recording import format as fmt
from ppsize.recording import load
from ppsize.recording.schema import ACCESS_DTYPE, VMA_DTYPE

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalar_dtypes = st.sampled_from(["<u1", "<i2", "<u4", "<i8", "<u8", "<f8", "<f4", "?", ">i4", ">u8"])
field_names = st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=4, unique=True)


@st.composite
def dtypes(draw):
    if draw(st.booleans()):
        return np.dtype(draw(scalar_dtypes))
    names = draw(field_names)
    fields = []
    for n in names:
        kind = draw(st.integers(0, 2))
        if kind == 0:
            fields.append((n, draw(scalar_dtypes)))
        elif kind == 1:
            fields.append((n, draw(scalar_dtypes), (draw(st.integers(1, 3)),)))
        else:
            fields.append((n, [("x", draw(scalar_dtypes)), ("y", "u1")]))
    return np.dtype(fields, align=draw(st.booleans()))


@st.composite
def arrays(draw):
    dt = draw(dtypes())
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=7))
    raw = draw(st.binary(min_size=dt.itemsize * int(np.prod(shape)), max_size=dt.itemsize * int(np.prod(shape))))
    return np.frombuffer(raw, dtype=dt).reshape(shape) if raw else np.zeros(shape, dt)


meta_values = st.recursive(st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=10)


def _write(path, sections, meta=None, kind="snapshot"):
    with fmt.Writer(path, kind, meta or {}) as w:
        for name, a in sections.items():
            w.add(name, a)


@SETTINGS
@given(sections=st.dictionaries(st.text("abcxyz_/", min_size=1, max_size=6), arrays(), max_size=5),
       meta=st.dictionaries(st.text(max_size=6), meta_values, max_size=4), mmap=st.booleans())
def test_round_trip(tmp_path, sections, meta, mmap):
    path = tmp_path / "r.ppw"
    _write(path, sections, meta)
    r = fmt.Reader(path, mmap=mmap)
    assert r.kind == "snapshot" and r.version == fmt.FORMAT_VERSION and r.meta == meta
    assert r.names == list(sections)
    for name, a in sections.items():
        b = r.array(name)
        want = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        assert b.shape == a.shape and b.dtype == want
        assert b.tobytes() == np.ascontiguousarray(a, dtype=want).tobytes()     # bit-exact (NaNs too)
        assert not b.flags.writeable
        assert r.info(name)["nbytes"] == a.nbytes
        assert r.info(name)["shape"] == a.shape
    assert not os.path.exists(str(path) + ".part")


@SETTINGS
@given(chunks=st.lists(st.integers(0, 50), max_size=8), seed=st.integers(0, 2**32 - 1))
def test_stream_equals_concatenation(tmp_path, chunks, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for n in chunks:
        a = np.zeros(n, ACCESS_DTYPE)
        a["addr"] = rng.integers(0, 2**63, n, dtype=np.uint64)
        a["size"] = rng.integers(0, 2**16, n)
        a["kind"] = rng.integers(0, 4, n)
        parts.append(a)
    path = tmp_path / "s.ppw"
    with fmt.Writer(path, "record") as w:
        w.add("before", np.arange(3))
        s = w.stream("accesses", ACCESS_DTYPE)
        for p in parts:
            s.append(p)
        s.close()
        w.add("after", np.arange(5))
    r = fmt.Reader(path)
    want = np.concatenate(parts) if parts else np.zeros(0, ACCESS_DTYPE)
    np.testing.assert_array_equal(r.array("accesses"), want)
    np.testing.assert_array_equal(r.array("after"), np.arange(5))
    assert ACCESS_DTYPE.itemsize == 11


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "sample.ppw"
    v = np.zeros(4, VMA_DTYPE)
    v["start"] = [0x1000, 0x5000, 0x9000, 0x10000]
    v["end"] = v["start"] + 0x1000
    _write(path, {"vmas": v, "big": np.arange(1000, dtype=np.uint64)}, {"processes": [], "strings": []})
    return path


def test_every_truncation_is_reported_with_the_file_name(sample, tmp_path):
    data = sample.read_bytes()
    cuts = sorted(set(range(0, len(data), 97)) | {1, 7, 8, 63, 64, len(data) - 41, len(data) - 40,
                                                   len(data) - 1})
    for cut in cuts:
        p = tmp_path / f"cut{cut}.ppw"
        p.write_bytes(data[:cut])
        with pytest.raises(fmt.RecordingError) as e:
            r = fmt.Reader(p)
            r.array("big")
        assert str(p) in str(e.value)
        assert isinstance(e.value, (fmt.TruncatedRecording, fmt.NotARecording, fmt.CorruptRecording)), cut
        if cut >= 64:
            assert isinstance(e.value, (fmt.TruncatedRecording, fmt.CorruptRecording))


def test_flipped_bytes_are_caught(sample, tmp_path):
    data = bytearray(sample.read_bytes())
    r = fmt.Reader(sample)
    targets = {"big": r._sections["big"]["offset"] + 17, "vmas": r._sections["vmas"]["offset"] + 3,
               "toc": len(data) - 40 - 5}
    for what, pos in targets.items():
        bad = bytearray(data)
        bad[pos] ^= 0x40
        p = tmp_path / f"flip-{what}.ppw"
        p.write_bytes(bad)
        with pytest.raises(fmt.CorruptRecording, match="checksum") as e:
            fmt.Reader(p).array(what if what != "toc" else "big")
        assert str(p) in str(e.value)
        if what != "toc":
            assert what in str(e.value)
            fmt.Reader(p, verify=False).array(what)          # explicitly unchecked: readable


def test_foreign_files(tmp_path):
    cases = {"empty": b"", "text": b"hello world\n" * 10, "zip": b"PK\x03\x04" + b"\0" * 100,
             "npy": b"\x93NUMPY" + b"\0" * 100, "perf": b"PERFILE2" + b"\0" * 100}
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(fmt.NotARecording) as e:
            fmt.Reader(p)
        assert str(p) in str(e.value)
    with pytest.raises(fmt.NotARecording, match="zip"):
        fmt.Reader(tmp_path / "zip")
    with pytest.raises(fmt.NotARecording, match="perf.data"):
        fmt.Reader(tmp_path / "perf")
    with pytest.raises(FileNotFoundError):
        fmt.Reader(tmp_path / "missing")


def _patch_version(path, version, trailer_too=True):
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 8, version)
    if trailer_too:
        struct.pack_into("<I", data, len(data) - 12, version)
    path.write_bytes(data)


def test_version_mismatch(sample):
    _patch_version(sample, fmt.FORMAT_VERSION + 1)
    with pytest.raises(fmt.UnsupportedVersion, match=r"format version 2 was written by a newer ppsize"):
        fmt.Reader(sample)
    _patch_version(sample, 0)
    with pytest.raises(fmt.UnsupportedVersion, match="format version 0 is not supported"):
        fmt.Reader(sample)
    _patch_version(sample, fmt.FORMAT_VERSION, trailer_too=False)
    data = bytearray(sample.read_bytes())
    struct.pack_into("<I", data, len(data) - 12, 7)
    sample.write_bytes(data)
    with pytest.raises(fmt.CorruptRecording, match="trailer says 7"):
        fmt.Reader(sample)


def test_bad_table_of_contents(sample):
    r = fmt.Reader(sample)
    data = bytearray(sample.read_bytes())
    toc_off, toc_len = struct.unpack_from("<QQ", data, len(data) - 32)
    toc = json.loads(bytes(data[toc_off:toc_off + toc_len]))
    toc["sections"][1]["nbytes"] += 8                         # past the TOC
    raw = json.dumps(toc).encode()
    new = bytes(data[:toc_off]) + raw + struct.pack("<8sQQIIQ", fmt.END_MAGIC, toc_off, len(raw),
                                                    zlib.crc32(raw), fmt.FORMAT_VERSION, 0)
    sample.write_bytes(new)
    with pytest.raises(fmt.CorruptRecording, match="bad bounds"):
        fmt.Reader(sample)
    assert r.names == ["vmas", "big"]


def test_writer_refuses_bad_sections_and_leaves_no_file(tmp_path):
    p = tmp_path / "w.ppw"
    with pytest.raises(ValueError, match="written twice"):
        with fmt.Writer(p, "snapshot") as w:
            w.add("a", np.arange(3))
            w.add("a", np.arange(3))
    assert not p.exists() and not (tmp_path / "w.ppw.part").exists()
    with pytest.raises(TypeError, match="object"):
        with fmt.Writer(p, "snapshot") as w:
            w.add("o", np.array([None, 1], dtype=object))
    with pytest.raises(ValueError, match="still being streamed"):
        with fmt.Writer(p, "snapshot") as w:
            w.stream("s", np.uint8)
            w.add("x", np.arange(2))
    assert not p.exists()


def test_load_and_cli_errors_are_one_line(sample, tmp_path, capsys):
    assert load(sample).kind == "snapshot"
    p = tmp_path / "bad.ppw"
    p.write_bytes(sample.read_bytes()[:-3])
    with pytest.raises(fmt.TruncatedRecording):
        load(p)
    for path in (p, tmp_path / "missing.ppw"):
        assert main(["inspect", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err
    other = tmp_path / "other.ppw"
    _write(other, {"x": np.arange(2)}, {}, kind="something")
    with pytest.raises(fmt.RecordingError, match="kind 'something'"):
        load(other)
