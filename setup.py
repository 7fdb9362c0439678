"""Build script for the compiled part of crypto_core (the Cython Merkle accelerator).

Everything declarative lives in pyproject.toml; this file only declares the extension so the
package build compiles it. The SIMD kernels pick their instruction set at run time (CPUID), so
the compiler needs no -march flag and one wheel runs on any x86-64 (and on other CPUs through
the portable C path).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "crypto_core._merkle_c",
        sources=["crypto_core/_merkle_c.pyx", "crypto_core/sha256_kernels.c"],
        include_dirs=["crypto_core"],
        extra_compile_args=["-O3", "-fno-strict-aliasing"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    )
)
