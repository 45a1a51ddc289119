#!/usr/bin/python3
"""npz files written by sit-eval load in numpy with the expected values.

usage: check_numpy_interop.py WRITE_NPZ_SAMPLES_BINARY OUT_DIR  (run by ctest)
"""
import os
import subprocess
import sys

import numpy as np


def main():
    binary, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    subprocess.run([binary, out], check=True)
    expected = {
        "arr_0": (np.arange(4 * 5 * 5 * 3) % 251).astype(np.uint8).reshape(4, 5, 5, 3),
        "arr_1": np.arange(4, dtype=np.int64) * 1000 - 1,
        "f4": (np.arange(24, dtype=np.float32) / 8).reshape(4, 6),
        "f8": (1.0 / (1.0 + np.arange(9.0))).reshape(3, 3),
        "i4": np.array([-7, 0, 7], dtype=np.int32),
    }
    failures = 0
    for name in ("stored.npz", "deflated.npz", "zip64.npz", "zip64_deflated.npz"):
        with np.load(os.path.join(out, name)) as z:
            if sorted(z.files) != sorted(expected):
                print(f"FAIL {name}: keys {z.files}")
                failures += 1
                continue
            for key, want in expected.items():
                got = z[key]
                if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
                    print(f"FAIL {name}/{key}: {got.dtype}{got.shape} != {want.dtype}{want.shape}")
                    failures += 1
        print(f"ok {name}")
    checked = 4 * len(expected)
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
