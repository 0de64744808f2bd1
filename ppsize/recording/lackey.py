"""valgrind lackey ``--trace-mem=yes`` logs -> ACCESS_DTYPE records, streamed.

Lackey prints one line per access (lackey/lk_main.c: ``"I  %08lx,%lu"`` for an instruction
fetch, ``" L %08lx,%lu"`` load, ``" S ..."`` store, ``" M ..."`` modify), mixed with
valgrind's own lines (``==PID== ...``, ``--PID-- ...``, ``**PID** ...``), which are skipped.
``LackeyParser.feed`` takes the log in chunks of any size (a pipe read, a file block),
parses every complete line without a Python loop per line and hands back records; a
malformed line raises ``LackeyError`` with its line number and text.

Two parsers give the same result: a numba kernel (one pass over the bytes) when numba is
installed (``pip install ppsize[numba]``), else a NumPy one (vectorised over the lines of
a chunk). ``PARSER`` says which is in use; ``parse(buf, parser=...)`` picks one.
"""
from __future__ import annotations

import os

import numpy as np

from .schema import ACCESS_DTYPE

__all__ = ["LackeyError", "LackeyParser", "parse", "read_log", "PARSER", "have_numba"]

_NL, _COMMA = 10, 44
_KIND = np.full(256, 255, dtype=np.uint8)          # line letter -> access kind
for _i, _c in enumerate("ILSM"):
    _KIND[ord(_c)] = _i
_HEX = np.full(256, 255, dtype=np.uint8)        # for the numba kernel
for _i, _c in enumerate("0123456789abcdef"):
    _HEX[ord(_c)] = _i
    _HEX[ord(_c.upper())] = _i
_DEC = np.full(256, 255, dtype=np.uint8)
for _i in range(10):
    _DEC[ord("0") + _i] = _i
MAX_SIZE = np.iinfo(np.uint16).max


class LackeyError(ValueError):
    """A line that is neither a lackey access nor a valgrind message."""

    def __init__(self, source, line_no, text, why="not a lackey --trace-mem line"):
        self.source, self.line_no, self.text = source, line_no, text
        super().__init__(f"{source}: line {line_no}: {why}: {text!r}")


# ---------------------------------------------------------------- numba kernel
def _numba_kernel():
    import numba

    @numba.njit(nogil=True, cache=True, boundscheck=False)
    def kernel(buf, n, addr, size, kind, hexv, decv, kindv):
        """Parse buf[:n] (complete lines). Returns (records, message lines, bad line
        index or -1, bad line start)."""
        i = 0
        line = 0
        k = 0
        msgs = 0
        while i < n:
            start = i
            c0 = buf[i]
            ok = False
            if i + 2 < n and buf[i + 2] == 32 and ((c0 == 73 and buf[i + 1] == 32) or
                                                    (c0 == 32 and (buf[i + 1] == 76 or buf[i + 1] == 83 or buf[i + 1] == 77))):
                letter = c0 if c0 != 32 else buf[i + 1]
                j = i + 3
                a = np.uint64(0)
                nd = 0
                while j < n and hexv[buf[j]] != 255:
                    a = (a << np.uint64(4)) | np.uint64(hexv[buf[j]])
                    j += 1
                    nd += 1
                if 0 < nd <= 16 and j < n and buf[j] == 44:
                    j += 1
                    s = 0
                    ns = 0
                    while j < n and decv[buf[j]] != 255 and ns < 5:
                        s = s * 10 + decv[buf[j]]
                        j += 1
                        ns += 1
                    if ns > 0 and j < n and buf[j] == 10 and s <= 65535:
                        addr[k] = a
                        size[k] = s
                        kind[k] = kindv[letter]
                        k += 1
                        ok = True
                        i = j + 1
            if not ok:
                # a valgrind message ("==", "--", "**"), an empty line, or an error
                if c0 == 10:
                    msgs += 1
                    i += 1
                elif i + 1 < n and buf[i + 1] == c0 and (c0 == 61 or c0 == 45 or c0 == 42):
                    msgs += 1
                    while i < n and buf[i] != 10:
                        i += 1
                    i += 1
                else:
                    return k, msgs, line, start
            line += 1
        return k, msgs, -1, 0

    return kernel


_kernel = None
try:
    import numba  # noqa: F401
    have_numba = True
except ImportError:
    have_numba = False
PARSER = "numba" if have_numba else "numpy"


def _get_kernel():
    global _kernel
    if _kernel is None:
        _kernel = _numba_kernel()
    return _kernel


def _parse_numba(buf: np.ndarray):
    n = len(buf)
    cap = n // 6 + 1                 # the shortest access line is 6 bytes ("I  0,1\n" is 7)
    addr = np.empty(cap, np.uint64)
    size = np.empty(cap, np.uint16)
    kind = np.empty(cap, np.uint8)
    k, msgs, bad, at = _get_kernel()(buf, n, addr, size, kind, _HEX, _DEC, _KIND)
    out = np.empty(k, ACCESS_DTYPE)
    out["addr"], out["size"], out["kind"] = addr[:k], size[:k], kind[:k]
    return out, msgs, (None if bad < 0 else (bad, at))


# ---------------------------------------------------------------- NumPy parser
_W = 16                 # at most 16 hex digits in an address
_TAIL = 6               # "," and up to 5 size digits before the newline


def _pair_table(values: np.ndarray, base: int) -> np.ndarray:
    """Two ASCII bytes read as one little-endian uint16 -> their value as two digits of
    ``base`` (a non-digit counts 0), | (first char not a digit) << 9 | (second) << 8."""
    v = np.arange(1 << 16, dtype=np.uint32)
    first, second = values[v & 0xFF].astype(np.uint32), values[v >> 8].astype(np.uint32)
    out = np.where(first < base, first, 0) * base + np.where(second < base, second, 0)
    out |= (first >= base).astype(np.uint32) << 9 | (second >= base).astype(np.uint32) << 8
    return out.astype(np.uint16)


_HEX_PAIRS = _pair_table(_HEX, 16)
_DEC_PAIRS = _pair_table(_DEC, 10)


def _bad_chars(pairs: np.ndarray) -> np.ndarray:
    """(N, k) pair-table results -> per row a mask with bit (2k-1-j) set when char j is not
    a digit."""
    bad = (pairs >> 8).astype(np.uint32)
    out = np.zeros(len(pairs), np.uint32)
    for k in range(pairs.shape[1]):
        out = (out << 2) | bad[:, k]
    return out


def _parse_numpy(buf: np.ndarray):
    """Vectorised over the lines, no per-line Python: every field is read with one gather
    of 8-byte words from a view holding a u64 at each byte offset (the line's first bytes,
    the 8 bytes before its newline, the 16 before its comma); digits are decoded two bytes
    at a time through 64K-entry tables; the address nibbles pack big-endian into a u64."""
    nl = np.flatnonzero(buf == _NL)
    starts = np.empty_like(nl)
    starts[:1] = 0
    starts[1:] = nl[:-1] + 1
    length = nl - starts
    pad = np.zeros(len(buf) + 2 * _W, np.uint8)       # every word read below stays inside
    pad[_W:_W + len(buf)] = buf
    word = np.ndarray(shape=(len(pad) - 7,), dtype="<u8", buffer=pad, strides=(1,))
    h = word[starts + _W]
    c0, c1, c2 = (h & 0xFF).astype(np.uint8), (h >> 8 & 0xFF).astype(np.uint8), (h >> 16 & 0xFF).astype(np.uint8)
    access = (length >= 6) & (c2 == 32) & (((c0 == 73) & (c1 == 32)) |
                                           ((c0 == 32) & ((c1 == 76) | (c1 == 83) | (c1 == 77))))
    message = (length == 0) | ((length >= 2) & (c1 == c0) & ((c0 == 61) | (c0 == 45) | (c0 == 42)))
    acc = np.flatnonzero(access)
    ts, te = starts[acc] + 3, nl[acc]
    # the size: digits after the last comma among the _TAIL bytes before the newline
    tail = word[te + _W - 8].view(np.uint8).reshape(-1, 8)[:, 8 - _TAIL:]
    is_comma = tail == _COMMA
    nsz = np.argmax(is_comma[:, ::-1], axis=1)                  # digits after the comma
    comma = te - 1 - nsz
    nd = comma - ts                                              # address digits
    good = is_comma.any(axis=1) & (nsz >= 1) & (nd >= 1) & (nd <= _W)
    dp = _DEC_PAIRS[np.ascontiguousarray(tail).view(np.uint16)]
    good &= (_bad_chars(dp) & ((np.uint32(1) << nsz.astype(np.uint32)) - np.uint32(1))) == 0
    v = (dp & 0xFF).astype(np.uint32)
    size = (v[:, 0] * 10000 + v[:, 1] * 100 + v[:, 2]) % (np.uint32(10) ** nsz.astype(np.uint32))
    good &= size <= MAX_SIZE
    # the address: the 16 bytes before the comma, right-aligned; what lies left of the
    # address (its line's head, the previous line) is masked off by the digit count
    raw = np.empty((len(acc), 2), np.uint64)
    raw[:, 0], raw[:, 1] = word[comma + _W - 16], word[comma + _W - 8]
    hp = _HEX_PAIRS[raw.view(np.uint16)]
    addr = hp.astype(np.uint8).view(">u8").ravel().astype(np.uint64)
    nd32 = np.minimum(nd, _W).astype(np.uint32)
    good &= (_bad_chars(hp) & ((np.uint32(1) << nd32) - np.uint32(1))) == 0
    shift = np.minimum(4 * nd, 63).astype(np.uint64)
    addr &= np.where(nd >= _W, ~np.uint64(0), (np.uint64(1) << shift) - np.uint64(1))
    ok = message
    ok[acc[good]] = True
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        return None, 0, (bad, int(starts[bad]))
    out = np.empty(len(acc), ACCESS_DTYPE)
    out["addr"], out["size"] = addr, size
    out["kind"] = _KIND[np.where(c0[acc] == 32, c1[acc], c0[acc])]
    return out, len(starts) - len(acc), None


_PARSERS = {"numba": _parse_numba, "numpy": _parse_numpy}


def parse(buf, parser: str | None = None, source="<lackey log>", first_line=1):
    """Parse complete lines (``buf`` ends with a newline, or is empty) -> (records,
    message lines). LackeyError names ``source`` and the line number (counting from
    ``first_line``)."""
    b = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    if len(b) and b[-1] != _NL:
        raise ValueError("parse() takes complete lines; use LackeyParser.feed for chunks")
    name = parser or PARSER
    if name not in _PARSERS:
        raise ValueError(f"unknown parser {name!r} (choose from {', '.join(_PARSERS)})")
    if name == "numba" and not have_numba:
        raise ValueError("the numba parser needs numba (pip install ppsize[numba])")
    out, msgs, bad = _PARSERS[name](b)
    if bad is not None:
        line, at = bad
        end = at + int(np.argmax(b[at:] == _NL)) if (b[at:] == _NL).any() else len(b)
        raise LackeyError(source, first_line + line, bytes(b[at:min(end, at + 80)]).decode("latin-1"))
    return out, msgs


class LackeyParser:
    """Streaming parser: ``feed(chunk)`` returns the records of the complete lines so far
    (the tail of an unfinished line is kept for the next chunk); ``close()`` parses what
    is left. Counts: ``records``, ``messages``, ``lines``."""

    def __init__(self, source="<lackey log>", parser: str | None = None):
        self.source, self.parser = source, parser
        self._tail = b""
        self.records = self.messages = self.lines = 0

    def feed(self, chunk) -> np.ndarray:
        data = self._tail + bytes(chunk) if self._tail else chunk
        cut = data.rfind(b"\n") + 1 if isinstance(data, (bytes, bytearray)) else bytes(data).rfind(b"\n") + 1
        self._tail = bytes(data[cut:])
        if cut == 0:
            return np.zeros(0, ACCESS_DTYPE)
        return self._take(np.frombuffer(data, dtype=np.uint8, count=cut))

    def _take(self, b) -> np.ndarray:
        out, msgs = parse(b, self.parser, self.source, self.lines + 1)
        self.records += len(out)
        self.messages += msgs
        self.lines += len(out) + msgs
        return out

    def close(self) -> np.ndarray:
        tail, self._tail = self._tail, b""
        if not tail:
            return np.zeros(0, ACCESS_DTYPE)
        return self._take(np.frombuffer(tail + b"\n", dtype=np.uint8))


def read_log(path, parser: str | None = None, chunk: int = 16 << 20, sink=None) -> np.ndarray | int:
    """Parse a lackey log file. Returns all records, or, with ``sink`` (a callable taking
    each chunk's records, e.g. a recording stream's ``append``), the number of records."""
    p = LackeyParser(os.fspath(path), parser)
    parts = []
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            recs = p.feed(data) if data else p.close()
            if sink is not None:
                sink(recs)
            else:
                parts.append(recs)
            if not data:
                break
    if sink is not None:
        return p.records
    return np.concatenate(parts) if parts else np.zeros(0, ACCESS_DTYPE)
