"""Example anonymous folio order policies (see :mod:`ppsize.hooks` for the arguments).

Each function returns a compiled :class:`~ppsize.hooks.OrderPolicy` for
``Kernel(anon_order_policy=...)``; each picks only orders in ``info.allowed``, so the
engine never has to clamp them, and the engine still falls back (a non-empty range, no
memory) as alloc_anon_folio does:

* :func:`fixed` -- always ask for one order (the highest allowed order at or below it);
* :func:`grow_after_faults` -- start at the process order and grow the order as the
  region around the fault fills up (present PTEs of its page table, as khugepaged's
  max_ptes_none reasons), so sparse regions get small folios and dense ones large;
* :func:`avoid_high_orders` -- take an order only while the zone keeps at least
  ``reserve`` free blocks of it (counting larger blocks as the pieces they would split
  into), so faults do not use up the last high-order blocks.

Their source is short on purpose: copy one to start your own.
"""
from __future__ import annotations

from ._validate import as_order, in_range, as_int
from .hooks import anon_order_policy

__all__ = ["fixed", "grow_after_faults", "avoid_high_orders"]

MAX_ORDER = 15          # the largest order any geometry's buddy allocator has (NR_ORDERS - 1)


def fixed(order):
    """A policy that always asks for ``order`` (kernel pages, log2): the highest
    allowed order at or below it, at least the process order."""
    want = as_order(order, "order", hi=MAX_ORDER)

    def fixed_order(info):
        o = want
        if o <= info.process_order:
            return info.process_order
        while o > info.process_order and not (info.allowed >> o) & 1:
            o -= 1
        return o

    return anon_order_policy(fixed_order, name=f"fixed({want})")


def grow_after_faults(threshold=16):
    """Grow the order with the pages already present in the fault's page-table region
    (``info.pte_present``, in process pages): the process order below ``threshold``
    pages, one order more at ``threshold``, two at ``2 * threshold``, ... (the highest
    allowed order at or below that)."""
    t0 = in_range(as_int(threshold, "threshold"), 1, 1 << 30, "threshold")

    def grow_after_faults(info):
        porder = info.process_order
        n = info.pte_present >> porder               # process pages present
        o = porder
        t = t0
        while n >= t and o < info.max_order:
            o += 1
            t *= 2
        while o > porder and not (info.allowed >> o) & 1:
            o -= 1
        return o

    return anon_order_policy(grow_after_faults, name=f"grow_after_faults({t0})")


def avoid_high_orders(reserve=64):
    """The highest allowed order o for which the zone has at least ``reserve`` free
    blocks of order o, counting each free block of a larger order j as the 2**(j - o)
    blocks it would split into; the process order when none has."""
    keep = in_range(as_int(reserve, "reserve"), 0, 1 << 40, "reserve")

    def avoid_high_orders(info):
        porder = info.process_order
        o = info.default_order
        while o > porder:
            if (info.allowed >> o) & 1:
                blocks = 0
                for j in range(o, info.max_order + 1):
                    blocks += info.nr_free[j] << (j - o)
                if blocks >= keep:
                    return o
            o -= 1
        return porder

    return anon_order_policy(avoid_high_orders, name=f"avoid_high_orders({keep})")
