"""The thread-safety contract (issue 15).

A :class:`~ppsize.Kernel` and everything it owns (its processes, page cache and
files, each process's page table, its CPUs' TLBs) share one reentrant lock; a
standalone :class:`~ppsize.PageTable` or :class:`~ppsize.TLB` has its own. Every
public method and property of those classes runs under its object's lock, taken
in Python before the compiled kernels release the GIL: calls on one Kernel from
several threads are serialized (each call is atomic), calls on different Kernels
run in parallel (each nogil loop holds only its own Kernel's lock). The compiled
objects of ``ppsize._core`` (reachable as ``p.mm``, ``k.core``, ``pt.core`` ...)
are not locked: use them from one thread at a time.
"""
from __future__ import annotations

import functools
import threading

__all__ = ["serialized", "new_lock"]


def new_lock():
    """The lock of one Kernel (or of a standalone PageTable or TLB): reentrant,
    since public methods call each other (Kernel.truncate -> Process.unmap_file)."""
    return threading.RLock()


def _locked(fn):
    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        with self._lock:
            return fn(self, *args, **kwargs)
    return call


def _is_method(attr) -> bool:
    # Python functions and the def methods of Cython base classes
    return callable(attr) and not isinstance(attr, (type, staticmethod, classmethod)) and \
        type(attr).__name__ in ("function", "method_descriptor", "cython_function_or_method")


def serialized(cls):
    """Class decorator: every public method and property of ``cls`` and of its bases
    (up to ``object``) runs under ``self._lock``."""
    seen = set()
    for klass in cls.__mro__[:-1]:
        for name, attr in list(vars(klass).items()):
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, property):
                setattr(cls, name, property(_locked(attr.fget) if attr.fget else None,
                                            _locked(attr.fset) if attr.fset else None,
                                            None, attr.__doc__))
            elif _is_method(attr):
                setattr(cls, name, _locked(attr))
    return cls
