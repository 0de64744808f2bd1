"""Cython kernels. Each module has a .pxd so other Cython code can cimport it."""
