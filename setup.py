"""Build the optional C accelerator of ``lockresolve.goflate``; metadata is in pyproject.toml.

``pip install .`` compiles ``lockresolve/goflate/_native.c`` when a C compiler
and the Python headers are there.  When they are not (or the build fails),
the package installs without it and uses the pure-Python encoder, which
writes the same bytes, more slowly.  ``LOCKRESOLVE_NO_EXTENSIONS=1`` skips
the build on purpose (how the no-compiler path is tested).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """``build_ext`` whose failures are warnings: the extension is optional."""

    def run(self) -> None:
        if os.environ.get("LOCKRESOLVE_NO_EXTENSIONS") == "1":
            print("lockresolve: LOCKRESOLVE_NO_EXTENSIONS=1, not building the C encoder")
            return
        try:
            super().run()
        except Exception as exc:  # a missing compiler raises from several places
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        print(
            f"lockresolve: the C encoder was not built ({exc}); "
            "the pure-Python encoder will be used (same bytes, slower)",
            file=sys.stderr,
        )


setup(
    ext_modules=[
        Extension(
            "lockresolve.goflate._native",
            sources=["lockresolve/goflate/_native.c"],
            extra_compile_args=["-std=c99", "-O3"] if os.name != "nt" else [],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
