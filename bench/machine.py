"""Where a comparison script ran: the CPU model and vector extensions, the CPUs usable, and
the BLAS library (with OpenBLAS's kernel set) that numpy uses in this process, and the
threads. Printed first by bench/compare_*.py and bench/evaluate_memory.py, so every number
in README names its machine."""

import ctypes
import os


def cpu():
    model, flags = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value
                if key == "flags" and not flags:
                    flags = " %s " % value
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if " %s " % f in flags]
    return "%s (%s), %d CPUs usable" % (model, " ".join(isa) or "no AVX2",
                                       len(os.sched_getaffinity(0)))


def numpy_blas():
    """The BLAS shared object numpy loaded (from this process's memory map), with
    OpenBLAS's core name when it is OpenBLAS."""
    import numpy  # noqa: F401  (loads the BLAS)
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if "/" in line else ""
            name = os.path.basename(path)
            if name.startswith("lib") and any(k in name for k in ("blas", "blis", "mkl")) \
                    and path not in libs:
                libs.append(path)
    out = []
    for path in libs:
        desc = os.path.basename(path)
        try:
            core = ctypes.CDLL(path).openblas_get_corename
            core.restype = ctypes.c_char_p
            desc += " (OpenBLAS, %s kernels)" % core().decode()
        except (OSError, AttributeError):
            pass
        out.append(desc)
    return ", ".join(out) or "unknown"


def describe():
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    return "machine: %s; numpy BLAS: %s, threads %s" % (cpu(), numpy_blas(), threads)


if __name__ == "__main__":
    print(describe())
