"""User order hooks: a plain Python function of one argument, compiled by numba to a C
function that the fault engine calls inside its nogil loops.

Two hooks, one per decision Linux makes with a fixed rule today:

* **anonymous folio order** (mm/memory.c ``alloc_anon_folio`` and ``create_huge_pmd``):
  :func:`anon_order_policy`, set with ``Kernel(anon_order_policy=...)`` or
  ``kernel.anon_order_policy = ...``;
* **readahead folio order** (mm/readahead.c ``page_cache_ra_order``'s ``new_order``):
  :func:`readahead_order_policy`, ``Kernel(readahead_order_policy=...)``.

The signature (the one place it is written down)
-------------------------------------------------

Each hook is ``int32_t hook(const struct *info)``: one pointer to a struct the engine
fills before the call (``ppsize/_core/kcore.pxd`` declares the structs; the NumPy dtypes
below have the same layout, which ``tests/test_policies_numba.py`` checks). In numba
terms: ``int32(CPointer(Record))`` with the record of :data:`ANON_FAULT_DTYPE` or
:data:`RA_ORDER_DTYPE`. You never write this: decorate ``def policy(info): ...``,
read the fields as attributes (``info.allowed``, ``info.nr_free[9]``; read-only: the
engine keeps some between calls) and return an order (kernel pages, log2). The same function runs unchanged without numba (a NumPy
record), through a slow path that warns once.

``anon_fault_info`` (one anonymous fault; orders are kernel page orders):

===============  ===============================================================
address          the faulting address
vma_start/end    the VMA's bounds; ``vma_flags`` its vm_flags (VM_HUGEPAGE ...)
allowed          bit mask of the orders the engine may use here: the process
                 order, and each order above it that the THP/mTHP settings allow
                 for the VMA (thp_vma_allowable_orders) whose aligned range lies in
                 the VMA (thp_vma_suitable_orders); the PMD order only where the
                 PMD entry is empty (emulated tables)
process_order    the lowest order the process needs (its page size)
default_order    the highest bit of ``allowed``: what Linux tries first
pmd_order        HPAGE_PMD_ORDER; ``max_order`` MAX_PAGE_ORDER
write            1 for a write fault (a read fault maps the zero page unless the
                 PMD order is chosen: the huge zero page or, without it, a THP)
mm_faults        the MM's page faults before this one (minflt)
mm_rss_anon      the MM's resident anonymous pages (kernel pages)
pte_present      kernel pages mapped by the page table covering ``address`` (a
                 region of ``pte_span`` bytes: 2M on 4K tables; the zero page
                 counts), as khugepaged counts present PTEs
vma_present      kernel pages mapped in the VMA (the zero page counts): the VMA's
                 resident pages, summed over its page tables at each call
vma_faults       anonymous faults in the VMA before this one (do_anonymous_page's;
                 a VMA merged into it adds its count, a split's parts keep it)
nr_free[16]      free blocks per order of the zone (zone->free_area[o].nr_free)
mm_id            the MM's id
===============  ===============================================================

``nr_free``, ``pte_present`` and ``vma_present`` cost a copy, a walk and a sum over the
VMA's page tables per fault, so the engine fills them only for a policy whose code names
them (:attr:`OrderPolicy.fields`; the
decorator's ``fields=`` forces it); every other field is filled at every call.

The hook is called for the anonymous faults where there is a choice: some order above
the process order enabled for the VMA (else the process order is the only answer and
the call is skipped). The engine then tries the returned order as ``alloc_anon_folio`` tries its highest
order: if the aligned range is not empty it tries the next lower allowed order, on
allocation failure the next lower one, and last the process order. A returned order
outside ``allowed`` is handled so the kernel stays consistent, counted
(:meth:`Kernel.policy_stats`) and reported after the batch by one
:class:`PolicyOrderWarning` naming the first address: negative or above
MAX_PAGE_ORDER: **refused** (``default_order`` is used); below the process order:
**raised** to it; another order not in ``allowed``: **lowered** to the next allowed
order below it.

``ra_order_info`` (one readahead window; page_cache_ra_order):

===============  ===============================================================
index            first page index of the window; ``size``, ``async_size`` the
                 window (file_ra_state), ``ra_order`` ra->order
file             the file id; ``i_size`` its size in bytes; ``nrpages`` cached pages
default_order    the order page_cache_ra_order chose (min(max order, ra->order,
                 ilog2(size)), at least the min order)
min_order        the mapping's min folio order; ``max_order`` its max folio order
max_page_order   MAX_PAGE_ORDER
nr_free[16]      free blocks per order of the zone
===============  ===============================================================

The mapping's min/max order is enforced after the call (below min: raised, above
max: lowered; negative or above MAX_PAGE_ORDER: refused), each counted and
reported as above; the readahead loop then shrinks folios that would pass the
window or EOF, as Linux does.

A Python policy that raises makes the fault use the built-in order; the exception is
re-raised as :class:`PolicyError` at the end of the batch.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np

from ._core.kcore import hook_struct_layout

__all__ = ["ANON_FAULT_DTYPE", "RA_ORDER_DTYPE", "OrderPolicy", "InfoView", "anon_order_policy",
           "readahead_order_policy", "as_policy", "PolicyOrderWarning", "PolicyError",
           "SlowPolicyWarning", "HOOK_KINDS", "BAD_KINDS", "have_numba"]

NR_ORDERS = 16
ANON_FAULT_DTYPE = np.dtype([
    ("address", np.uint64), ("vma_start", np.uint64), ("vma_end", np.uint64),
    ("vma_flags", np.uint64), ("allowed", np.uint64), ("mm_faults", np.int64),
    ("mm_rss_anon", np.int64), ("pte_present", np.int64), ("pte_span", np.int64),
    ("vma_present", np.int64), ("vma_faults", np.int64), ("nr_free", np.int64, (NR_ORDERS,)),
    ("process_order", np.int32), ("pmd_order", np.int32), ("max_order", np.int32),
    ("default_order", np.int32), ("write", np.int32), ("mm_id", np.int32)], align=True)
RA_ORDER_DTYPE = np.dtype([
    ("index", np.int64), ("size", np.int64), ("async_size", np.int64), ("i_size", np.int64),
    ("nrpages", np.int64), ("nr_free", np.int64, (NR_ORDERS,)),
    ("file", np.int32), ("ra_order", np.int32), ("default_order", np.int32),
    ("min_order", np.int32), ("max_order", np.int32), ("max_page_order", np.int32)], align=True)

# hook kind -> (index in KernelCore, argument dtype, its C struct name)
HOOK_KINDS = {"anon": (0, ANON_FAULT_DTYPE, "anon_fault_info"),
              "readahead": (1, RA_ORDER_DTYPE, "ra_order_info")}
# KernelCore.hook_stats order (kcore.pxd HOOK_BAD_*)
BAD_KINDS = ("refused", "raised", "lowered", "error", "lowered_to_max")
_WHY = {"refused": "negative or above MAX_PAGE_ORDER: refused, the built-in order used",
        "raised": "below the process (min) order: raised to it",
        "lowered": "not allowed here: lowered to the next allowed order",
        "error": "the policy raised: the built-in order used",
        "lowered_to_max": "above the mapping's max order: lowered to it"}

_layout = hook_struct_layout()
for _kind, (_, _dt, _cname) in HOOK_KINDS.items():      # the C structs and the dtypes agree
    _size, _offsets = _layout[_cname]
    assert _dt.itemsize == _size and all(_dt.fields[n][1] == o for n, o in _offsets.items()), _cname


class PolicyOrderWarning(UserWarning):
    """An order policy returned orders the engine refused or clamped in a batch."""


class SlowPolicyWarning(UserWarning):
    """A plain Python order policy runs through the slow path (no numba)."""


class PolicyError(RuntimeError):
    """A Python order policy raised during a batch (the faults used the built-in order)."""


def have_numba() -> bool:
    """numba importable (``pip install ppsize[numba]``)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _record(dtype):
    import numba
    return numba.from_dtype(dtype)


def _c_signature(kind):
    from numba import types
    return types.int32(types.CPointer(_record(HOOK_KINDS[kind][1])))


def expected_signature(kind) -> str:
    """The hook's signature in words (error messages)."""
    return (f"int32_t hook(const {HOOK_KINDS[kind][2]} *info), i.e. a numba "
            f"@cfunc('int32(CPointer(Record))') over ppsize.hooks."
            f"{'ANON_FAULT_DTYPE' if kind == 'anon' else 'RA_ORDER_DTYPE'}, or a Python "
            f"function of one argument (info) decorated with "
            f"@ppsize.{'anon_order_policy' if kind == 'anon' else 'readahead_order_policy'}")


def _check_arity(fn, kind):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return                              # builtins without a signature: try the call
    try:
        sig.bind(None)
    except TypeError:
        raise TypeError(f"order policy {getattr(fn, '__name__', fn)!r} has signature {sig}; "
                        f"expected {expected_signature(kind)}") from None


class InfoView:
    """What a Python policy sees on the slow path: the fields of the engine's struct
    as Python ints (``nr_free`` a list), read live from the buffer the engine fills."""
    __slots__ = ("_a",)

    def __init__(self, arr):
        self._a = arr

    def __getattr__(self, name):
        try:
            return self._a[name][0].tolist()
        except (KeyError, ValueError):
            raise AttributeError(f"the hook's info has no field {name!r}; fields: "
                                 f"{', '.join(self._a.dtype.names)}") from None

    def __getitem__(self, name):
        return self.__getattr__(name)


# fields of anon_fault_info that cost a copy (nr_free), a walk (pte_present) or a sum
# over the VMA's page tables (vma_present) per fault:
# filled only for policies whose code names them (or all: raw cfuncs, the slow path)
COSTLY_FIELDS = ("nr_free", "pte_present", "vma_present")


def names_read(fn) -> set:
    """Attribute and global names a function's code (nested code included) uses."""
    code = getattr(getattr(fn, "py_func", fn), "__code__", None)
    out, todo = set(), [code] if code is not None else []
    while todo:
        c = todo.pop()
        out.update(c.co_names)
        todo.extend(x for x in c.co_consts if hasattr(x, "co_names"))
    return out


class OrderPolicy:
    """A compiled (or, without numba, interpreted) order policy of one kind.

    ``fn``: the Python function of ``info``; ``address``: the C function the engine
    calls (None: the slow path); ``cfunc``: numba's CFunc (kept alive here);
    ``fields``: the costly fields (COSTLY_FIELDS) the engine fills for it (the ones
    its code names; all for a raw cfunc or the slow path; the decorator's ``fields=``
    forces a set)."""

    def __init__(self, kind, fn, cfunc=None, name=None, fields=None):
        self.kind = kind
        self.fn = fn
        self.cfunc = cfunc
        self.address = None if cfunc is None else int(cfunc.address)
        self.name = name or getattr(fn, "__name__", repr(fn))
        if fields is None:
            fields = COSTLY_FIELDS if cfunc is None or not hasattr(fn, "__code__") else \
                [f for f in COSTLY_FIELDS if f in names_read(fn)]
        bad = set(fields) - set(COSTLY_FIELDS)
        if bad:
            raise ValueError(f"fields {sorted(bad)}: choose from {', '.join(COSTLY_FIELDS)}")
        self.fields = frozenset(fields)

    def __call__(self, info):
        """Run the policy on a record (a row of the kind's dtype), in Python."""
        return self.fn(info)

    def __repr__(self):
        how = "numba" if self.address else "python"
        return f"<{self.kind} order policy {self.name} ({how})>"


def _compile(kind, fn, name=None, fields=None):
    _check_arity(fn, kind)
    if not have_numba():
        return OrderPolicy(kind, fn, None, name, fields)
    import numba
    from numba import carray
    try:
        jitted = numba.njit(fn) if not isinstance(fn, numba.core.registry.CPUDispatcher) else fn

        def wrapper(p):
            return jitted(carray(p, 1)[0])

        c = numba.cfunc(_c_signature(kind), nopython=True)(wrapper)
    except Exception as e:       # numba's typing errors: say which policy and what
        raise TypeError(f"numba could not compile the {kind} order policy "
                        f"{getattr(fn, '__name__', fn)!r}: {e}") from e
    return OrderPolicy(kind, fn, c, name, fields)


def anon_order_policy(fn=None, *, name=None, fields=None):
    """Decorator: compile ``fn(info) -> order`` (``info`` an anon_fault_info, see the
    module docstring) into an anonymous folio order policy for
    ``Kernel(anon_order_policy=...)``. ``info.nr_free`` and ``info.pte_present`` are
    filled only if ``fn``'s code names them, as is ``info.vma_present`` (a helper
    reading them from the ``info`` it is handed is not seen: then pass
    ``fields=("nr_free", "pte_present", "vma_present")``)."""
    if fn is None:
        return lambda f: _compile("anon", f, name, fields)
    return _compile("anon", fn, name, fields)


def readahead_order_policy(fn=None, *, name=None):
    """Decorator: compile ``fn(info) -> order`` (``info`` a ra_order_info) into a
    readahead folio order policy for ``Kernel(readahead_order_policy=...)``."""
    if fn is None:
        return lambda f: _compile("readahead", f, name)
    return _compile("readahead", fn, name)


_slow_warned = False


def as_policy(value, kind):
    """The OrderPolicy for a value given to Kernel: None (the built-in policy), an
    OrderPolicy of this kind, a numba CFunc of the hook's signature, or a plain
    Python callable of one argument (the slow path, one SlowPolicyWarning).
    Anything else: TypeError naming the expected signature."""
    global _slow_warned
    if value is None:
        return None
    if kind not in HOOK_KINDS:
        raise ValueError(f"hook kind {kind!r}: one of {', '.join(HOOK_KINDS)}")
    if isinstance(value, OrderPolicy):
        if value.kind != kind:
            raise TypeError(f"{value!r} is a {value.kind} order policy, not a {kind} one; "
                            f"expected {expected_signature(kind)}")
        policy = value
    elif type(value).__name__ == "CFunc" and hasattr(value, "_sig"):
        if value._sig != _c_signature(kind):
            raise TypeError(f"numba cfunc of signature {value._sig} for the {kind} order "
                            f"policy; expected {expected_signature(kind)}")
        policy = OrderPolicy(kind, value._pyfunc, value)
    elif callable(value):
        _check_arity(value, kind)
        policy = OrderPolicy(kind, value, None)
    else:
        raise TypeError(f"{kind} order policy {value!r} is not callable; expected "
                        f"{expected_signature(kind)}")
    if policy.address is None and not _slow_warned:
        _slow_warned = True
        warnings.warn(f"{policy!r} runs through the slow path (the GIL taken at every "
                      f"call{'' if have_numba() else '; numba is not installed: pip install ppsize[numba]'}); "
                      f"decorate it with @ppsize.{'anon_order_policy' if kind == 'anon' else 'readahead_order_policy'}"
                      f" for native speed", SlowPolicyWarning, stacklevel=4)
    return policy


def report(kind_of, n, first, error, name_of):
    """After a batch: raise PolicyError for a Python policy's exception, else warn
    about refused or clamped orders (``first``: hook index, bad kind, address or page
    index, order). ``kind_of``/``name_of``: hook index -> kind / policy name."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    if error is not None:
        raise PolicyError(f"the {kind_of[first[0]] if first else ''} order policy raised "
                          f"{type(error).__name__}: {error} (the faults used the built-in "
                          f"order)").with_traceback(None) from error
    if n:
        which, bad, where, order = first
        kind = kind_of[which]
        at = f"address {where:#x}" if kind == "anon" else f"page index {where}"
        warnings.warn(f"{n} order(s) returned by the {kind} order policy {name_of[which]} were "
                      f"refused or clamped in this batch; the first at {at}: order {order} "
                      f"({_WHY[BAD_KINDS[bad]]})", PolicyOrderWarning, stacklevel=5)
