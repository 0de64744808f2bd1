"""Build the Cython kernels in ppsize/_core.

PPSIZE_DEBUG=1 builds with bounds checks, initialised-memoryview checks and the
kernels' internal assertions (generated C goes to a separate build directory, so
switching modes always regenerates it). PPSIZE_ONLY=a,b builds only the named
kernels (a development convenience while another kernel is half-written).
"""
import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("PPSIZE_DEBUG", "") == "1"
ONLY = {n for n in os.environ.get("PPSIZE_ONLY", "").split(",") if n}

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": False,     # nogil kernel methods use self, which is never None
    "cdivision": True,
    "embedsignature": True,
}

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if not DEBUG:
    macros.append(("CYTHON_WITHOUT_ASSERTIONS", "1"))

extensions = []
for path in sorted(glob.glob(os.path.join("ppsize", "_core", "*.pyx"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if ONLY and name not in ONLY:
        continue
    extensions.append(Extension(
        f"ppsize._core.{name}", [path],
        include_dirs=[np.get_include()],
        define_macros=macros,
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    ))

setup(ext_modules=cythonize(
    extensions,
    compiler_directives=DIRECTIVES,
    build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython"),
    compile_time_env={"PPSIZE_DEBUG": DEBUG},
))
