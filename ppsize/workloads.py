"""Workload generators: seeded address streams filled chunk by chunk by numba-compiled
kernels, streamed into :meth:`Process.access` without materialising the whole stream.

A generator kernel is a function ``fill(out, state, ints, floats)`` that fills every
element of ``out`` (uint64 addresses) and keeps whatever it needs to continue in
``state`` (uint64; ``state[0]`` is the seeded random state, see :func:`next_random`);
``ints`` (int64) and ``floats`` (float64) are its read-only parameters and tables.
Decorate it with :func:`generator` (numba's ``njit`` when numba is installed, the
plain function otherwise) and wrap it in a :class:`Stream`::

    @ppsize.workloads.generator
    def every_other_page(out, state, ints, floats):
        base, pages = ints[0], ints[1]
        for i in range(out.size):
            out[i] = base + (state[1] % pages) * 8192
            state[1] += 1

    s = ppsize.workloads.Stream(every_other_page, ints=[addr, 1000])
    counts = ppsize.workloads.run(proc, s, 10**8)          # outcome counts

The built-in streams: :func:`uniform`, :func:`strided`, :func:`sequential`,
:func:`zipf`, :func:`pointer_chase`, :func:`hash_join`, :func:`gups`. Same seed, same
stream, whatever the chunk size.
"""
from __future__ import annotations

import numpy as np

from ._validate import as_int, in_range

__all__ = ["generator", "Stream", "run", "next_random", "uniform", "strided", "sequential",
           "zipf", "pointer_chase", "hash_join", "gups", "CHUNK"]

CHUNK = 1 << 16               # addresses per Process.access call in run()

# numba is imported on first use of a compiled kernel (a Stream's fill, a user
# generator), not with this module: ``take`` of the built-in uniform, strided and zipf
# streams is NumPy (the same addresses), so ``ppsize compare`` never loads numba.
_PY: dict = {}               # name -> the plain function of each built-in kernel
_BOUND = False               # the built-ins compiled (or, without numba, bound plainly)


def _numba():
    """The numba module, or None if it is not installed."""
    try:
        import numba
    except ImportError:       # pragma: no cover - the numba extra not installed
        return None
    return numba


def _bind():
    """Compile every built-in kernel (numba njit, nogil, cached on disk) into this
    module's namespace, in definition order (a kernel's callees first), or bind the
    plain functions without numba. numba resolves a kernel's globals when it first
    compiles it, by which time they are all bound."""
    global _BOUND
    if not _BOUND:
        nb = _numba()
        for name, fn in _PY.items():
            globals()[name] = nb.njit(nogil=True, cache=True)(fn) if nb else fn
        _BOUND = True


def _kernel(name):
    _bind()
    return globals()[name]


class _Builtin:
    """A built-in kernel before :func:`_bind`: calling it binds them all and calls
    the compiled one (a Stream holds this; a compiled caller never sees it)."""

    def __init__(self, name):
        self.__name__ = name

    def __call__(self, *args):
        return _kernel(self.__name__)(*args)

    @property
    def py_func(self):
        """The plain Python function (as a numba dispatcher's py_func; its callees
        are bound)."""
        _bind()
        return _PY[self.__name__]


def _builtin(fn):
    _PY[fn.__name__] = fn
    return _Builtin(fn.__name__)


def __getattr__(name):
    # next_random, HAVE_NUMBA and numba as module attributes, looked up on first use
    if name == "next_random":
        return _kernel(name)
    if name == "HAVE_NUMBA":
        return _numba() is not None
    if name == "numba":
        return _numba()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generator(fn):
    """Compile a generator kernel ``fill(out, state, ints, floats)`` (numba njit,
    nogil); without numba the function runs as plain Python (slowly)."""
    nb = _numba()
    return nb.njit(nogil=True)(fn) if nb else fn


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@_builtin
def next_random(state):
    """splitmix64 over state[0]: the next 64-bit random number (uint64)."""
    z = state[0] + _GOLDEN
    state[0] = z
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


del next_random               # bound on first use (module __getattr__): compiled, if numba is


def _next_randoms(state, n):
    """The next ``n`` :func:`next_random` numbers at once (NumPy; the same values)."""
    z = state[0] + _GOLDEN * np.arange(1, n + 1, dtype=np.uint64)
    if n:
        state[0] = z[-1]
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


class Stream:
    """A seeded address stream: ``kernel`` (a :func:`generator`) with its parameters.
    :meth:`fill` continues the stream into a caller's buffer; :meth:`reset` starts it
    again from the seed."""

    def __init__(self, kernel, ints=(), floats=(), seed=0, name=None, state=(), vector=None):
        self.kernel = kernel
        self.vector = vector          # built-ins: vector(n, state, ints) -> the same addresses
        self.ints = np.ascontiguousarray(ints, dtype=np.int64)
        self.floats = np.ascontiguousarray(floats, dtype=np.float64)
        self.seed = as_int(seed, "seed")
        self.name = name or getattr(kernel, "__name__", "stream")
        self._init_state = np.zeros(max(8, len(state) + 1), np.uint64)
        self._init_state[0] = np.uint64(self.seed & (2**64 - 1))
        self._init_state[1:1 + len(state)] = np.asarray(state, np.uint64)
        self.reset()

    def reset(self):
        """Back to the start of the stream."""
        self.state = self._init_state.copy()

    def fill(self, out):
        """Fill ``out`` (a contiguous uint64 array) with the next ``out.size`` addresses."""
        if not isinstance(out, np.ndarray) or out.dtype != np.uint64 or not out.flags.c_contiguous:
            raise TypeError("out must be a contiguous uint64 array")
        with np.errstate(over="ignore"):          # the plain-Python path wraps like C
            self.kernel(out, self.state, self.ints, self.floats)
        return out

    def take(self, n):
        """The next ``n`` addresses as a new array (for tests and small streams); the
        built-in uniform, strided and zipf streams compute it with NumPy (no numba)."""
        n = in_range(as_int(n, "n"), 0, 1 << 40, "n")
        if self.vector is not None:
            return self.vector(n, self.state, self.ints)
        return self.fill(np.empty(n, np.uint64))

    def chunks(self, n, chunk=CHUNK):
        """The next ``n`` addresses, ``chunk`` at a time, in one reused buffer (each
        yielded array is valid until the next step)."""
        n = in_range(as_int(n, "n"), 0, 1 << 62, "n")
        chunk = in_range(as_int(chunk, "chunk"), 1, 1 << 30, "chunk")
        buf = np.empty(min(chunk, n) or 1, np.uint64)
        left = n
        while left > 0:
            part = buf if left >= buf.size else buf[:left]
            yield self.fill(part)
            left -= part.size

    def __repr__(self):
        return f"<Stream {self.name} seed={self.seed}>"


def run(proc, stream, n, chunk=CHUNK, write=False, insn=False) -> dict:
    """Feed the next ``n`` addresses of ``stream`` into ``proc.access`` (``chunk`` per
    call, one buffer reused); returns how many accesses ended in each Outcome."""
    from .process import Outcome
    counts = np.zeros(len(Outcome), np.int64)
    for part in stream.chunks(n, chunk):
        out = proc.access(part, write=write, insn=insn)
        counts += np.bincount(out, minlength=len(Outcome))[:len(Outcome)]
    return {o.name.lower(): int(c) for o, c in zip(Outcome, counts)}


# ------------------------------------------------------------------ the kernels
@_builtin
def _uniform(out, state, ints, floats):
    base, n, align = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    for i in range(out.size):
        out[i] = base + (next_random(state) % n) * align


@_builtin
def _strided(out, state, ints, floats):
    # state[1]: the offset of the next access; it wraps at the region's end
    base, size, stride = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    pos = state[1]
    for i in range(out.size):
        out[i] = base + pos
        pos += stride
        if pos >= size:
            pos -= size
    state[1] = pos


def _uniform_np(n, state, ints):
    base, m, align = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    return base + (_next_randoms(state, n) % m) * align


def _strided_np(n, state, ints):
    # pos wraps at size after each step: (start + i * stride) mod size, stride <= size
    base, size, stride = (int(x) for x in ints[:3])
    pos = (int(state[1]) + stride * np.arange(n, dtype=object if stride * n >= 1 << 63 else np.int64)) % size
    state[1] = np.uint64((int(state[1]) + stride * n) % size)
    return np.uint64(base) + pos.astype(np.uint64)


def _zipf_np(n, state, ints):
    base, align, m = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    low = np.uint64(0xffffffff)
    r = _next_randoms(state, n)
    k = 3 + 2 * (((r >> np.uint64(32)) * m) >> np.uint64(32)).astype(np.int64)
    pages = ints[k].astype(np.uint64)
    pages = np.where((r & low) >= ints[k + 1].astype(np.uint64), pages >> np.uint64(32), pages)
    return base + (pages & low) * align


@_builtin
def _zipf(out, state, ints, floats):
    # Walker's alias method, one 16-byte slot per item j (the high 32 bits of r scaled
    # to n): ints[3 + 2j] = the item's page | its alias's page << 32 (pages through a
    # seeded permutation), ints[4 + 2j] = the keep threshold (probability * 2**32),
    # compared with the low 32 bits of r
    base, align, n = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    low = np.uint64(0xffffffff)
    for i in range(out.size):
        r = next_random(state)
        j = ((r >> np.uint64(32)) * n) >> np.uint64(32)
        k = np.uint64(3) + np.uint64(2) * j
        pages = np.uint64(ints[k])
        if (r & low) >= np.uint64(ints[k + np.uint64(1)]):
            pages >>= np.uint64(32)
        out[i] = base + (pages & low) * align


@_builtin
def _alias_push(i, p, stacks, tops):
    # onto the small (0) or large (1) stack of Vose's method, by p[i] < 1
    k = 0 if p[i] < 1.0 else 1
    stacks[k, tops[k]] = i
    tops[k] += 1


@_builtin
def _alias_table(w, prob, alias):
    # Vose's alias method over the weights w: prob[i], alias[i]
    n = w.size
    stacks = np.empty((2, n), np.int64)
    tops = np.zeros(2, np.int64)
    p = w * (n / w.sum())
    for i in range(n):
        _alias_push(i, p, stacks, tops)
    while tops[0] and tops[1]:
        tops -= 1
        s, g = stacks[0, tops[0]], stacks[1, tops[1]]
        prob[s] = p[s]
        alias[s] = g
        p[g] = p[g] + p[s] - 1.0
        _alias_push(g, p, stacks, tops)
    for k in range(2):                     # what is left has probability 1 (rounding)
        for i in range(tops[k]):
            prob[stacks[k, i]] = 1.0
            alias[stacks[k, i]] = stacks[k, i]


_ALIAS_PY_MAX = 1 << 16       # zipf over at most this many items: the alias table in Python


def _alias_table_py(w, prob, alias):
    # _alias_table without numba, the same floats: numba's w.sum() adds in order (as
    # cumsum does; NumPy's sum is pairwise), the rest is the same IEEE arithmetic
    n = w.size
    p = (w * (n / np.cumsum(w)[-1])).tolist()
    small = [i for i in range(n) if p[i] < 1.0]
    large = [i for i in range(n) if not p[i] < 1.0]
    pr = [0.0] * n
    al = list(range(n))
    while small and large:
        s, g = small.pop(), large.pop()
        pr[s] = p[s]
        al[s] = g
        p[g] = p[g] + p[s] - 1.0
        (small if p[g] < 1.0 else large).append(g)
    for i in small + large:               # what is left has probability 1 (rounding)
        pr[i] = 1.0
    prob[:] = pr
    alias[:] = al


@_builtin
def _pointer_chase(out, state, ints, floats):
    # state[1]: the position in the cycle; ints[3:]: the nodes in cycle order (the
    # successor of each node is the next one, so the stream is the chase's, and
    # filling it needs no dependent load)
    base, align, n = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    pos = state[1]
    for i in range(out.size):
        out[i] = base + np.uint64(ints[np.uint64(3) + pos]) * align
        pos += np.uint64(1)
        if pos == n:
            pos = np.uint64(0)
    state[1] = pos


@_builtin
def _hash_join(out, state, ints, floats):
    # a scan of the input tuples, each followed by its hash bucket (multiplicative hash
    # of the tuple's key, the tuple index): build inserts, probe looks up
    in_base, tuple_size, n_tuples = np.uint64(ints[0]), np.uint64(ints[1]), np.uint64(ints[2])
    tab_base, bucket, n_buckets = np.uint64(ints[3]), np.uint64(ints[4]), np.uint64(ints[5])
    key_mul = np.uint64(ints[6])
    j = state[1]                       # 2 * tuple index + (0: tuple, 1: bucket)
    for i in range(out.size):
        t = j >> np.uint64(1)
        if j & np.uint64(1):
            h = (t + state[2]) * key_mul
            out[i] = tab_base + ((h >> np.uint64(17)) % n_buckets) * bucket
        else:
            out[i] = in_base + t * tuple_size
        j += np.uint64(1)
        if j >= np.uint64(2) * n_tuples:
            j = np.uint64(0)
    state[1] = j


_POLY = np.uint64(0x7)
_TOP = np.uint64(63)


@_builtin
def _gups(out, state, ints, floats):
    # HPCC RandomAccess: ran = (ran << 1) ^ (ran < 0 ? POLY : 0); Table[ran & (size-1)]
    base, mask = np.uint64(ints[0]), np.uint64(ints[1])
    ran = state[1]
    for i in range(out.size):
        ran = (ran << np.uint64(1)) ^ (_POLY if ran >> _TOP else np.uint64(0))
        out[i] = base + (ran & mask) * np.uint64(8)
    state[1] = ran


# ------------------------------------------------------------------ constructors
def _region(base, size, what="size"):
    base = in_range(as_int(base, "base"), 0, (1 << 62) - 1, "base")
    size = in_range(as_int(size, what), 1, 1 << 50, what)
    return base, size


def _pow2(value, what):
    v = as_int(value, what)
    if v < 1 or v & (v - 1):
        raise ValueError(f"{what} must be a power of two >= 1, got {value!r}")
    return v


def uniform(base, size, align=8, seed=0) -> Stream:
    """Uniformly random ``align``-aligned addresses in [base, base + size)."""
    base, size = _region(base, size)
    align = _pow2(align, "align")
    if size < align:
        raise ValueError(f"size {size} is smaller than align {align}")
    return Stream(_uniform, [base, size // align, align], seed=seed, name="uniform", vector=_uniform_np)


def strided(base, size, stride, start=0) -> Stream:
    """base + start, base + start + stride, ... wrapping at base + size."""
    base, size = _region(base, size)
    stride = in_range(as_int(stride, "stride"), 1, size, "stride")
    start = in_range(as_int(start, "start"), 0, size - 1, "start")
    return Stream(_strided, [base, size, stride], state=[start], name=f"strided({stride})",
                  vector=_strided_np)


def sequential(base, size, step=8) -> Stream:
    """A sequential scan of [base, base + size), ``step`` bytes apart, wrapping."""
    s = strided(base, size, step)
    s.name = "sequential"
    return s


def zipf(base, size, exponent=1.0, align=4096, seed=0) -> Stream:
    """Zipf-distributed accesses over the ``align``-sized items of [base, base + size):
    item of rank r with probability ~ 1 / r**exponent, ranks over a seeded
    permutation of the items (the hot items are scattered)."""
    base, size = _region(base, size)
    align = _pow2(align, "align")
    n = size // align
    if not 1 <= n <= 1 << 24:
        raise ValueError(f"zipf over {n} items: 1 .. 2**24 items of {align} bytes")
    a = float(exponent)
    if not 0.0 <= a <= 10.0:
        raise ValueError(f"exponent must be in [0, 10], got {exponent!r}")
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** a
    prob, alias = np.empty(n, np.float64), np.empty(n, np.int64)
    if n <= _ALIAS_PY_MAX or not _BOUND and _numba() is None:
        _alias_table_py(w, prob, alias)
    else:
        _kernel("_alias_table")(w, prob, alias)
    perm = np.random.default_rng([seed, 11]).permutation(n).astype(np.int64)
    slots = np.empty(2 * n, np.int64)
    slots[0::2] = perm | (perm[alias] << 32)
    slots[1::2] = np.minimum(np.round(prob * 2.0**32), 2.0**32).astype(np.int64)
    return Stream(_zipf, np.concatenate(([base, align, n], slots)), seed=seed,
                  name=f"zipf({a:g})", vector=_zipf_np)


def pointer_chase(base, size, align=64, seed=0) -> Stream:
    """Follow a seeded random cycle through every ``align``-sized node of [base, base +
    size) (Sattolo's algorithm): each access depends on the one before."""
    base, size = _region(base, size)
    align = _pow2(align, "align")
    n = size // align
    if not 1 <= n <= 1 << 26:
        raise ValueError(f"pointer chase over {n} nodes: 1 .. 2**26 nodes of {align} bytes")
    order = np.random.default_rng([seed, 13]).permutation(n)    # one cycle: order[i] -> order[i+1]
    return Stream(_pointer_chase, np.concatenate(([base, align, n], order)), seed=seed,
                  name="pointer_chase")


def hash_join(table_base, table_size, input_base, input_size, bucket=64, tuple_size=16,
              seed=0) -> Stream:
    """A hash join's build or probe pass: each input tuple read in order (``tuple_size``
    bytes apart in [input_base, input_base + input_size)), then its hash bucket
    (``bucket`` bytes) in the table [table_base, table_base + table_size); the keys
    (and so the buckets) depend on ``seed``. Use one stream with write=True for the
    build and another seed for the probe."""
    table_base, table_size = _region(table_base, table_size, "table_size")
    input_base, input_size = _region(input_base, input_size, "input_size")
    bucket = _pow2(bucket, "bucket")
    tuple_size = _pow2(tuple_size, "tuple_size")
    n_tuples, n_buckets = input_size // tuple_size, table_size // bucket
    if not n_tuples or not n_buckets:
        raise ValueError("the input must hold one tuple and the table one bucket")
    return Stream(_hash_join, [input_base, tuple_size, n_tuples, table_base, bucket, n_buckets,
                               -7046029254386353131],          # 0x9E3779B97F4A7C15 as int64
                  seed=seed, state=[0, seed & ((1 << 63) - 1)], name="hash_join")


def gups(base, size, seed=1) -> Stream:
    """HPCC RandomAccess (GUPS) over a table of ``size`` bytes (a power of two) of
    8-byte words: the LFSR stream of HPCC_starts, from a seeded start."""
    base, size = _region(base, size)
    size = _pow2(size, "size")
    if size < 8:
        raise ValueError(f"size {size}: at least one 8-byte word")
    start = (as_int(seed, "seed") * 0x2545F4914F6CDD1D + 1) & ((1 << 64) - 1)
    return Stream(_gups, [base, size // 8 - 1], seed=seed, state=[start], name="gups")
