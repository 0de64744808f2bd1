"""Sizes as ints or strings ("64K", "16G"), and their display."""
from __future__ import annotations

import numbers

__all__ = ["parse_size", "fmt_size", "ULONG_LIMIT", "S_MAXBYTES"]

ULONG_LIMIT = 1 << 64     # a syscall argument is an unsigned long (size_t, 64 bits)
S_MAXBYTES = 1 << 62      # the model's sb->s_maxbytes: file sizes and offsets stay below it

_SUFFIX = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_size(value, what: str = "size") -> int:
    """Bytes from an int or a string such as ``"4K"``, ``"64KiB"``, ``"16G"``.

    Raises TypeError for other types and ValueError (naming ``what`` and the value)
    for strings that are not sizes or for negative sizes."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int or a size string, not bool ({value!r})")
    if isinstance(value, numbers.Integral):
        n = int(value)
    elif isinstance(value, str):
        s = value.strip().upper().replace("IB", "").replace(" ", "")
        num = s.rstrip("BKMGTP")
        suffix = s[len(num):]
        if not num.isdigit() or suffix not in _SUFFIX:
            raise ValueError(f"{what} {value!r} is not a size (examples: 4096, '64K', '16G')")
        n = int(num) * _SUFFIX[suffix]
    else:
        raise TypeError(f"{what} must be an int or a size string, not {type(value).__name__} ({value!r})")
    if n < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return n


def fmt_size(n: int) -> str:
    """Shortest exact binary-suffixed form: 4096 -> '4K', 3 << 30 -> '3G', 1000 -> '1000'."""
    n = int(n)
    for suffix in ("P", "T", "G", "M", "K"):
        unit = _SUFFIX[suffix]
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
