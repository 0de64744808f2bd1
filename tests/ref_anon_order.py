"""Pure-Python reference of the anonymous fault's folio order with an order hook
(mm/memory.c alloc_anon_folio and create_huge_pmd; ppsize/_core/mm.pyx
do_anonymous + anon_hook_order): which orders the hook may pick, what becomes of a
bad pick, and the fallback through the allowed orders down to the process order."""

REFUSED, RAISED, LOWERED = "refused", "raised", "lowered"


def allowed_mask(va, vs, ve, settings, porder, pmd_order, kshift, pmd_empty, native=False):
    """(allowed, pmd_ok): the process order's bit, the orders above it that the settings
    allow whose aligned range lies in [vs, ve), and the PMD order where the PMD entry
    is empty (kernel-granule tables only)."""
    orders = settings if native else settings & ((1 << pmd_order) - 1)
    orders &= ~((1 << (porder + 1)) - 1)
    allowed = 1 << porder
    for o in range(porder + 1, 64):
        if orders >> o & 1:
            size = 1 << (o + kshift)
            a = va & ~(size - 1)
            if a >= vs and a + size <= ve:
                allowed |= 1 << o
    pmd_ok = False
    if not native and settings >> pmd_order & 1:
        size = 1 << (pmd_order + kshift)
        a = va & ~(size - 1)
        pmd_ok = a >= vs and a + size <= ve and pmd_empty
    if pmd_ok:
        allowed |= 1 << pmd_order
    return allowed, pmd_ok


def clamp(r, allowed, porder, max_order):
    """(top order to try, what became of r: None, REFUSED, RAISED or LOWERED)."""
    default = allowed.bit_length() - 1
    if r < 0 or r > max_order:
        return default, REFUSED
    if r < porder:
        return porder, RAISED
    if not allowed >> r & 1:
        while not allowed >> r & 1:
            r -= 1
        return r, LOWERED
    return r, None


def fault_order(va, vs, ve, settings, porder, pmd_order, kshift, mapped, r, max_order,
                can_alloc=lambda order: True, native=False):
    """The folio order a write fault at va gets when the hook returns r; ``mapped(a,
    b)``: whether any kernel page of [a, b) is mapped (so pmd_empty is "nothing
    mapped in the PMD range", true when no table was freed). The hook is not asked
    when no order above the process order is enabled. Returns (order, what became
    of r)."""
    pmd = 1 << (pmd_order + kshift)
    pa = va & ~(pmd - 1)
    allowed, pmd_ok = allowed_mask(va, vs, ve, settings, porder, pmd_order, kshift,
                                   not mapped(pa, pa + pmd), native)
    if not pmd_ok and not settings >> (porder + 1):
        return porder, None                   # no order above the process's: no call
    top, what = clamp(r, allowed, porder, max_order)
    if pmd_ok and top >= pmd_order and can_alloc(pmd_order):
        return pmd_order, what
    checked = False
    for o in range(min(top, pmd_order - 1 if not native else 63), porder, -1):
        if not allowed >> o & 1:
            continue
        size = 1 << (o + kshift)
        a = va & ~(size - 1)
        if not checked:
            if mapped(a, a + size):
                continue
            checked = True
        if can_alloc(o):
            return o, what
    return porder, what
