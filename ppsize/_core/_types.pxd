# Shared typedefs and constants for the Cython kernels.
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

ctypedef uint64_t u64
ctypedef int64_t i64
ctypedef uint32_t u32
ctypedef int32_t i32
ctypedef uint16_t u16
ctypedef uint8_t u8
ctypedef int8_t i8

cdef enum:
    MAX_LEVELS = 5
