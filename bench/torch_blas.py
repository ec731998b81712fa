"""Which BLAS the torch peers run on, for their JSON lines.

Debian's python3-torch links the system libblas.so.3, which is the reference BLAS unless an optimised one
(libopenblas0-openmp) is installed: the reference one makes torch's fully connected layers several times slower,
so a figure against it is not a fair peer. Read after torch is imported (the library is mapped by then).
"""
import os


def blas_library() -> str:
    """The file name of the BLAS mapped into this process, e.g. 'openblas-openmp/libblas.so.3'."""
    try:
        with open("/proc/self/maps", encoding="utf8") as maps:
            for line in maps:
                path = line.split()[-1]
                if "blas" in os.path.basename(path):
                    real = os.path.realpath(path)
                    return os.path.join(os.path.basename(os.path.dirname(real)), os.path.basename(real))
    except OSError:
        pass
    return "unknown"
