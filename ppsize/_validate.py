"""The argument checks of every Python-facing entry point, each written once.

Each function returns the coerced value or raises TypeError (wrong kind of value)
or ValueError (right kind, bad value) with a message naming what was checked and
the value given. The compiled modules (``ppsize._core.*``) use them too. NumPy is
imported only by the array checks, so ``import ppsize`` stays light.
"""
from __future__ import annotations

import numbers

from .units import ULONG_LIMIT, fmt_size, parse_size

__all__ = ["as_int", "as_int_or_size", "as_u64", "in_range", "as_order", "as_choice",
           "as_page_size", "as_addresses", "as_index_array", "buffer_length", "user_range", "as_ulong"]

_U64 = 1 << 64


def as_int(value, what: str) -> int:
    """An int (Python or NumPy integer; bool is refused)."""
    if type(value) is int:                       # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} ({value!r})")
    return int(value)


def as_int_or_size(value, what: str) -> int:
    """An int, or a size string such as "64K" (:func:`ppsize.parse_size`)."""
    if isinstance(value, str):
        return parse_size(value, what)
    return as_int(value, what)


def in_range(value: int, lo: int, hi: int, what: str) -> int:
    """``value`` itself if lo <= value <= hi."""
    if not lo <= value <= hi:
        raise ValueError(f"{what} {value} out of range {lo}..{hi}")
    return value


def as_u64(value, what: str) -> int:
    """An int in [0, 2**64)."""
    value = as_int(value, what)
    if not 0 <= value < _U64:
        raise ValueError(f"{what} {value} out of range [0, 2**64)")
    return value


def as_order(value, what: str = "order", hi: int = 63, lo: int = 0) -> int:
    """A folio or entry order: an int in lo..hi."""
    return in_range(as_int(value, what), lo, hi, what)


def as_choice(value, choices, what: str, where: str = ""):
    """``value`` if it is one of ``choices`` (strings); ``where`` is added after the
    value in the message (e.g. " for 64K")."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {what} {value!r}{where}; choose one of {', '.join(choices)}")
    return value


def as_page_size(value, base: int, what: str = "page_size", base_name: str = "the kernel's") -> int:
    """A page or folio size (int or size string) that is a power of two >= ``base``
    bytes (by default the kernel's page)."""
    n = parse_size(value, what)
    if n < base or n & (n - 1):
        raise ValueError(f"{what} {fmt_size(n)} must be a power of two >= {base_name} {fmt_size(base)}")
    return n


def as_addresses(vas, what: str = "addresses"):
    """An integer array-like as a C-contiguous uint64 NumPy array of the same shape
    (no copy when it already is one). Negative values wrap to huge addresses,
    which are outside every geometry."""
    import numpy as np
    if isinstance(vas, np.ndarray):
        arr = vas
    else:
        try:
            arr = np.asarray(vas)
        except (ValueError, OverflowError) as e:
            raise TypeError(f"{what} must be an array of integers: {e}") from None
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "O" and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                         for v in arr.flat):
            raise ValueError(f"{what} must fit in 64 bits; got values such as {max(arr.flat, key=abs)!r}")
        raise TypeError(f"{what} must be integers, not dtype {arr.dtype} (e.g. {arr.flat[0]!r})"
                        if arr.size else f"{what} must be integers, not dtype {arr.dtype}")
    if arr.dtype != np.uint64 or not arr.flags.c_contiguous:
        return np.ascontiguousarray(arr, dtype=np.uint64)
    return arr


def as_index_array(a, what: str = "indices"):
    """A flat uint64 array of non-negative integers (an empty array-like of any
    dtype gives an empty array)."""
    import numpy as np
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            return np.zeros(0, dtype=np.uint64)
        raise TypeError(f"{what} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{what} contains a negative value {int(arr.min())}")
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.uint64)


def buffer_length(have: int, need: int, what: str, optional: bool = False) -> None:
    """A caller's buffer that a nogil loop reads or fills must hold exactly ``need``
    elements (``optional``: or none, meaning "the same for every element")."""
    if have != need and not (optional and have == 0):
        raise ValueError(f"{what} has {have} elements; the batch has {need}"
                         + (" (or give 0 for none)" if optional else ""))


def user_range(start: int, end: int, limit: int, what: str = "range") -> None:
    """[start, end) must lie inside [0, limit) (the page table's user VA): the walks
    index tables by masked address bits, so an address beyond would alias."""
    if not 0 <= start <= end <= limit:
        raise ValueError(f"{what} [{start:#x}, {end:#x}) is not inside the user VA [0, {limit:#x})")


def as_ulong(value, what: str) -> int:
    """A syscall's address or length (int or size string) as the unsigned long Linux
    receives: a value of 2**64 or more cannot be passed at all (it would wrap)."""
    n = parse_size(value, what)
    if n >= ULONG_LIMIT:
        raise ValueError(f"{what} {n:#x} does not fit in 64 bits (an unsigned long)")
    return n
