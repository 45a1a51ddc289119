#!/usr/bin/python3
"""FID of sit-eval against numpy np.cov + scipy.linalg.sqrtm and against its own bound.

Generates two synthetic feature sets (default 50,000 x 2048 float32, correlated and
non-negative like pool_3 activations), saves them as npz feature files (stored, as
np.savez writes), then measures on this machine, in this session:
  - numpy / scipy: np.load of both files, then mean, np.cov (float64) and sqrtm of the
    product, as the ADM evaluator does (mean taken in float64 here so that both sides
    compute the same quantity);
  - sit-eval: `sit-eval metrics --metrics fid` on the files, whole process (start, reading,
    statistics, distance, exit), best of 3;
  - the bound: reading both files (np.load: numpy's reader, which checks each member's
    CRC-32 as sit-eval does) + dsyrk of both centred sets + one 2048^2 eigensolve, the last
    two with sit-eval's BLAS (`build/bench/bench_fid --bounds-only`).
Prints the times, sit-eval's ratio to the bound (issue 19: <= 1.3) and to numpy+scipy, and
the relative agreement of the FIDs.

Usage (Debian's interpreter, which has numpy and scipy):
  /usr/bin/python3 bench/compare_fid.py [--n 50000] [--d 2048] [--sit-eval build/eval/sit-eval]
                                        [--bench-fid build/bench/bench_fid] [--threads N]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.linalg
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)


def features(rng, mix, n, d, shift):
    g = rng.standard_normal((n, d), dtype=np.float32)
    x = g + g[:, : mix.shape[0]] @ mix
    return np.maximum(x + np.float32(0.5 + shift), 0, dtype=np.float32)


def numpy_fid(a, b):
    mu1, mu2 = a.mean(axis=0, dtype=np.float64), b.mean(axis=0, dtype=np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def best_of(runs, fn):
    best, out = float("inf"), None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    print(machine.describe())  # every number names its machine
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--sit-eval", default=os.path.join(here, "..", "build", "eval", "sit-eval"))
    ap.add_argument("--bench-fid", default=os.path.join(here, "..", "build", "bench", "bench_fid"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    mix = rng.standard_normal((min(64, args.d), args.d), dtype=np.float32) * 0.15
    a = features(rng, mix, args.n, args.d, 0.0)
    b = features(rng, mix, args.n, args.d, 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        fa, fb, out = (os.path.join(tmp, f) for f in ("samples.npz", "ref.npz", "out.json"))
        np.savez(fa, pool=a)
        np.savez(fb, pool=b)
        del a, b

        t_read, (a, b) = best_of(3, lambda: (np.load(fa)["pool"], np.load(fb)["pool"]))
        t_np, fid_np = best_of(1, lambda: numpy_fid(a, b))

        cmd = [args.sit_eval, "--threads", str(args.threads), "metrics", "--metrics", "fid",
               "--timings", "--samples", fa, "--ref", fb, "--json", out]
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True)
            runs.append((time.perf_counter() - t, run.stderr.strip()))
            if run.returncode != 0:
                sys.exit(f"sit-eval failed: {run.stderr}")
        t_sit, timings = min(runs)
        with open(out) as f:
            fid_sit = json.load(f)["fid"]

    bench = subprocess.run([args.bench_fid, "--bounds-only", "--n", str(args.n), "--d",
                            str(args.d), "--threads", str(args.threads)],
                           capture_output=True, text=True)
    m = re.search(r"bound: dsyrk ([0-9.]+) s, eigensolve ([0-9.]+) s", bench.stdout)
    if bench.returncode != 0 or not m:
        sys.exit(f"bench_fid --bounds-only failed: {bench.stdout}{bench.stderr}")
    t_dsyrk, t_eig = float(m.group(1)), float(m.group(2))
    bound = t_read + t_dsyrk + t_eig

    rel = abs(fid_sit - fid_np) / abs(fid_np)
    print(f"features: 2 x {args.n} x {args.d} float32, npz (stored), {args.threads} threads")
    print(f"numpy: np.load of both {t_read:.2f} s; np.cov + scipy sqrtm: {t_np:.2f} s "
          f"(FID {fid_np!r}); together {t_read + t_np:.2f} s")
    print(f"sit-eval metrics --metrics fid, whole process: {t_sit:.2f} s, best of 3 "
          f"({timings}; FID {fid_sit!r})")
    print(f"bound: read {t_read:.2f} s + dsyrk x2 {t_dsyrk:.2f} s + eigenvalues {t_eig:.2f} s "
          f"= {bound:.2f} s")
    print(f"sit-eval / bound: {t_sit / bound:.2f} (target <= 1.3); numpy+scipy (FID part) / "
          f"sit-eval whole process: {t_np / t_sit:.2f}x, with numpy's reading "
          f"{(t_read + t_np) / t_sit:.2f}x; relative difference {rel:.2e}")
    return 0 if rel < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
