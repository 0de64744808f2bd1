"""Build the example extension against an installed (or source-tree) ppsize:

    python setup.py build_ext --inplace
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

import ppsize

setup(
    name="ppsize-example",
    ext_modules=cythonize([Extension("ppsize_example", ["ppsize_example.pyx"])],
                          include_path=[ppsize.get_include()], language_level=3),
)
