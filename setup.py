"""Only the optional C part of the invocation path (api/_relay.c); the rest is in pyproject.toml.

`optional=True`: where no C compiler is at hand the install still succeeds and the gateway
runs its pure-Python path (api/fastpath.py says which one it uses at start-up)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("api._relay", ["api/_relay.c"], optional=True,
                             extra_compile_args=["-O2"])])
