"""ppsize: a memory-model engine for Linux MM with a per-process page size.

Compiled kernels are imported lazily, so ``import ppsize`` and the CLI start fast.
"""
from .geometry import GEOMETRIES, Geometry, geometry
from .units import fmt_size, parse_size

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use, PEP 562)
_LAZY = {
    "PageTable": "ppsize.pagetable",
    "Translation": "ppsize.pagetable",
    "TranslateStatus": "ppsize.pagetable",
    "pgtable_cost": "ppsize.pgtable_cost",
    "Kernel": "ppsize.kernel",
    "Process": "ppsize.process",
    "Outcome": "ppsize.process",
    "TLB": "ppsize.tlb",
    "MMU": "ppsize.tlb",
    "CPU_PRESETS": "ppsize.cpu_presets",
    "anon_order_policy": "ppsize.hooks",
    "readahead_order_policy": "ppsize.hooks",
}

__all__ = ["GEOMETRIES", "Geometry", "geometry", "parse_size", "fmt_size", "get_include", *_LAZY]


def get_include() -> str:
    """The directory to put on Cython's include path to cimport ppsize's public C
    interface (``ppsize/_core/_types.pxd``, ``xarray.pxd``, ``folio.pxd``), as
    ``cythonize(..., include_path=[ppsize.get_include()])``; see examples/cython/."""
    import os
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ppsize' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
