"""The optional extras (``pip install "ppsize[sweep]"``, ``"ppsize[plot]"``): which
modules each needs, and one check that names the extra when one is missing, so
the rest of ppsize imports without them and a command can say what to install."""
from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "MissingExtraError", "require"]

# extra -> the import names it provides (pyproject.toml's optional-dependencies)
EXTRAS = {
    "sweep": ("dask", "distributed", "pandas", "pyarrow"),
    "plot": ("matplotlib",),
}


class MissingExtraError(ImportError):
    """A feature needs an extra that is not installed; the message names the
    extra and the missing module."""


def require(extra: str, what: str, modules=None) -> None:
    """Import every module of ``extra`` (or just ``modules``); raise
    :class:`MissingExtraError` naming ``what`` needs it and how to install it."""
    for name in modules or EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise MissingExtraError(f"{what} needs the '{extra}' extra ({name} is missing: {e}); "
                                    f"install it with: pip install \"ppsize[{extra}]\"") from None
