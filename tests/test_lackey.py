"""The lackey log parsers (numba and NumPy) against the reference parser, streamed in
random chunks; malformed lines; the --lackey-log conversion."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ref_lackey
from ppsize.cli import main
from ppsize.recording import lackey, load
from ppsize.recording.recorder import record_lackey_log

PARSERS = ["numpy"] + (["numba"] if lackey.have_numba else [])
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

hexdigits = "0123456789abcdef"


@st.composite
def access_line(draw):
    kind = draw(st.sampled_from("ILSM"))
    width = draw(st.integers(1, 16))
    addr = draw(st.text(hexdigits + "ABCDEF", min_size=width, max_size=width))
    size = draw(st.integers(0, 65535))
    sz = str(size).rjust(draw(st.integers(len(str(size)), 5)), "0")    # leading zeros are fine
    return (f"I  {addr},{sz}" if kind == "I" else f" {kind} {addr},{sz}").encode()


message_line = st.sampled_from([b"==123== Lackey, an example Valgrind tool", b"==1== ", b"",
                                b"--42-- WARNING: something, with a comma", b"**9** error, oops",
                                b"==7==   total:         26,431"])
bad_line = st.sampled_from([b"hello", b"I 12,3", b"I  12", b"I  ,3", b"I  12,", b" X 12,3", b" L 1g,2",
                            b" L 12,70000", b" L 12,123456", b" L 12345678901234567,1", b"I  12,3 ",
                            b" S @1,2", b"=x= no", b"I  1:2,3", b" M 1,,2", b"L  12,3", b"\t L 1,2"])


def _reference(text):
    recs, msgs = ref_lackey.parse_lines(text)
    a = np.zeros(len(recs), lackey.ACCESS_DTYPE)
    if recs:
        a["addr"], a["size"], a["kind"] = zip(*recs)
    return a, msgs


def _stream(text, parser, cuts):
    p = lackey.LackeyParser(parser=parser)
    parts, pos = [], 0
    for c in sorted(cuts):
        c = min(c, len(text))
        parts.append(p.feed(text[pos:c]))
        pos = c
    parts.append(p.feed(text[pos:]))
    parts.append(p.close())
    return np.concatenate(parts), p


@pytest.mark.parametrize("parser", PARSERS)
@SETTINGS
@given(lines=st.lists(st.one_of(access_line(), access_line(), message_line), max_size=60),
       cuts=st.lists(st.integers(0, 2000), max_size=6), final_newline=st.booleans())
def test_parser_matches_reference(parser, lines, cuts, final_newline):
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    want, msgs = _reference(text + (b"\n" if text and not text.endswith(b"\n") else b""))
    got, p = _stream(text, parser, cuts)
    np.testing.assert_array_equal(got, want)
    assert p.records == len(want) and p.messages == msgs
    assert p.lines == len(want) + msgs
    if text.endswith(b"\n") or not text:
        whole, m = lackey.parse(text, parser)
        np.testing.assert_array_equal(whole, want)
        assert m == msgs


@pytest.mark.parametrize("parser", PARSERS)
@SETTINGS
@given(before=st.lists(st.one_of(access_line(), message_line), max_size=20), bad=bad_line,
       after=st.lists(access_line(), max_size=5), cuts=st.lists(st.integers(0, 600), max_size=4))
def test_malformed_line_is_named(parser, before, bad, after, cuts):
    text = b"\n".join(before + [bad] + after) + b"\n"
    with pytest.raises(ValueError) as ref:
        ref_lackey.parse_lines(text)
    assert ref.value.args[0] == len(before) + 1
    with pytest.raises(lackey.LackeyError) as e:
        _stream(text, parser, cuts)
    assert e.value.line_no == len(before) + 1
    assert e.value.text == bad.decode("latin-1")[:80]


def test_real_lackey_output(tmp_path):
    """A real valgrind lackey log (if valgrind is here): parsers agree with the reference."""
    import shutil
    import subprocess
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    log = tmp_path / "lk.txt"
    subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}", "true"], check=True)
    text = log.read_bytes()
    want, msgs = _reference(text)
    assert len(want) > 10000 and msgs > 5
    for parser in PARSERS:
        got, m = lackey.parse(text, parser)
        np.testing.assert_array_equal(got, want)
    out = tmp_path / "lk.ppw"
    assert main(["record", "--lackey-log", str(log), "-o", str(out), "-q"]) == 0
    w = load(out)
    np.testing.assert_array_equal(w.accesses, want)
    assert w.capture["accesses"] == len(want) and w.processes == []
    w.check()


def test_unknown_parser_and_partial_buffer():
    with pytest.raises(ValueError, match="unknown parser"):
        lackey.parse(b"I  1,1\n", "fortran")
    with pytest.raises(ValueError, match="complete lines"):
        lackey.parse(b"I  1,1", "numpy")


def test_read_log_sink_and_errors(tmp_path, capsys):
    log = tmp_path / "l.txt"
    log.write_bytes(b"==1== hi\nI  10,4\n L 20,8\n")
    got = []
    assert lackey.read_log(log, sink=got.append, chunk=5) == 2
    assert np.concatenate(got)["addr"].tolist() == [0x10, 0x20]
    log.write_bytes(b"I  10,4\nnonsense here\n")
    out = tmp_path / "x.ppw"
    with pytest.raises(lackey.LackeyError, match=r"l.txt: line 2"):
        record_lackey_log(log, out)
    assert not out.exists() and not (tmp_path / "x.ppw.part").exists()
    assert main(["record", "--lackey-log", str(log), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 2" in err
