"""The one compiled module: catalog._sketch, the overlap sketch's inner loops (catalog/_sketch.c).

Everything else is in pyproject.toml. The module is optional: where it cannot be built (no C
compiler), catalog.overlap computes the same values with numpy, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "catalog._sketch",
            ["catalog/_sketch.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
