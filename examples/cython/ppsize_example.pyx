# cython: language_level=3, boundscheck=False, wraparound=False
"""An extension that embeds ppsize through its public C interface (xarray.pxd,
folio.pxd, _types.pxd): a small page cache of its own, in nogil loops over ppsize's
XArray and folio table, decoding entries with the inline helpers.

Build: ``python setup.py build_ext --inplace`` (setup.py puts ppsize.get_include()
on Cython's include path). Errors are -errno values, as the kernels return them.
"""
from libc.errno cimport EEXIST, EINVAL

from ppsize._core._types cimport i64, u64
from ppsize._core.folio cimport PG_uptodate, FolioTable
from ppsize._core.xarray cimport (XArray, xa_add, xa_is_pfn, xa_is_value, xa_load, xa_mk_pfn,
                                  xa_mk_value, xa_store, xa_to_pfn, xa_to_value)

ERRNOS = {"EEXIST": EEXIST, "EINVAL": EINVAL}


def add_folios(XArray xa, FolioTable folios, i64 first_pfn, u64 index, u64 count, int order):
    """``count`` folios of 2**order pages at file indices ``index``, ``index`` + 2**order,
    ...; frames from ``first_pfn`` up. Each as __filemap_add_folio does it: the folio
    made (folio_init), then stored (xa_add); an index conflict undoes the folio.
    Returns (folios added, the first error or 0)."""
    cdef u64 i, nr = (<u64>1) << order
    cdef i64 pfn, added = 0
    cdef int err, first_err = 0
    with nogil:
        for i in range(count):
            pfn = first_pfn + <i64>(i * nr)
            err = folios.folio_init(pfn, order, PG_uptodate, -2, <i64>(index + i * nr))
            if err == 0:
                err = xa_add(&xa.xa, index + i * nr, order, xa_mk_pfn(pfn))
                if err:
                    folios.folio_free(pfn)
            if err == 0:
                added += 1
            elif first_err == 0:
                first_err = err
    return added, first_err


def store_shadows(XArray xa, u64 index, u64 count, u64 value):
    """Value entries (shadows) value, value + 1, ... at index, index + 1, ..."""
    cdef u64 i
    with nogil:
        for i in range(count):
            xa_store(&xa.xa, index + i, 0, xa_mk_value(value + i))


def scan(XArray xa, FolioTable folios, u64 first, u64 last):
    """Look up every index of [first, last]: (pages in folios, the sum of their
    folios' head pfns over pages, the sum of the shadow values)."""
    cdef u64 i, e
    cdef i64 pages = 0, heads = 0, shadows = 0, pfn
    with nogil:
        for i in range(first, last + 1):
            e = xa_load(&xa.xa, i)
            if xa_is_pfn(e):
                pfn = xa_to_pfn(e)
                if folios.folio_head(pfn) == pfn:
                    pages += 1
                    heads += pfn
            elif xa_is_value(e):
                shadows += <i64>xa_to_value(e)
    return pages, heads, shadows
