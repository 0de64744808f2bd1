# PUBLIC C interface of ppsize (stable): the typedefs and constants every kernel and the
# public headers (xarray.pxd, folio.pxd) use. Error codes are libc.errno's, returned negated.
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef uint64_t u64
ctypedef int64_t i64
ctypedef uint32_t u32
ctypedef int32_t i32
ctypedef uint16_t u16
ctypedef uint8_t u8
ctypedef int8_t i8

cdef enum:
    MAX_LEVELS = 5            # page-table levels at most (x86-64 LA57)
    NR_ORDERS = 16            # per-order counters cover orders 0..15: every MAX_PAGE_ORDER
                              # (the buddy allocator's 4-bit order field)
