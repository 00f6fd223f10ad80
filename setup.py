"""Only the C part of the build; everything else is in pyproject.toml.

``inference._tap`` is llama.cpp's eval callback for the router's state tap
(inference/state_tap.py). It is optional: without a C compiler the build goes on
and the router's look reads the state with one extra decode instead.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("inference._tap", ["inference/_tap.c"], optional=True)])
