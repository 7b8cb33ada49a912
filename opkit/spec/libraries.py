"""Native libraries a kernel may link (``@opkit.op(..., libraries=("openblas",))``): the table of what
opkit knows how to find. Pure data; :mod:`opkit.build.libraries` finds them on disk for `opkit build`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LibrarySpec:
    name: str  # as written in libraries=
    module: str  # the Python package that ships its headers and shared library
    pip: str  # what to install
    header: str  # the header a kernel includes
    define: str  # a macro the build defines for kernels that link it
    doc: str


LIBRARIES: dict[str, LibrarySpec] = {
    "openblas": LibrarySpec(
        name="openblas", module="scipy_openblas32", pip="scipy-openblas32", header="cblas.h",
        define="OPKIT_HAS_OPENBLAS",
        doc="OpenBLAS (BLAS + LAPACK) from PyPI, 32-bit integers; symbols carry a scipy_ prefix "
            "(scipy_cblas_sgemm); opkit/blas.h wraps the GEMM and the thread count"),
}
