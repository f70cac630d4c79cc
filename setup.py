# cffi_modules has no pyproject.toml spelling yet; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["host/spikeboard/_build.py:ffibuilder"])
