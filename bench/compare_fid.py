#!/usr/bin/python3
"""FID of sit-eval against numpy np.cov + scipy.linalg.sqrtm on the same features.

Generates two synthetic feature sets (default 50,000 x 2048 float32, correlated and
non-negative like pool_3 activations), saves them as npz feature files, then times
  - numpy / scipy: mean, np.cov (float64) and sqrtm of the product, as the ADM evaluator
    does (mean taken in float64 here so that both sides compute the same quantity);
  - sit-eval: `sit-eval metrics --metrics fid` on the files (total wall time, and the
    FID computation alone from --timings).
Prints both times, the ratio, and the relative agreement.

Usage (Debian's interpreter, which has numpy and scipy):
  /usr/bin/python3 bench/compare_fid.py [--n 50000] [--d 2048] [--sit-eval build/eval/sit-eval]
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


def main():
    print(machine.describe())  # every number names its machine
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--sit-eval", default=os.path.join(here, "..", "build", "eval", "sit-eval"))
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

        t = time.perf_counter()
        fid_np = numpy_fid(a, b)
        t_np = time.perf_counter() - t

        cmd = [args.sit_eval, "--threads", str(args.threads), "metrics", "--metrics", "fid",
               "--timings", "--samples", fa, "--ref", fb, "--json", out]
        t = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True)
        t_sit_total = time.perf_counter() - t
        if run.returncode != 0:
            sys.exit(f"sit-eval failed: {run.stderr}")
        with open(out) as f:
            fid_sit = json.load(f)["fid"]
        m = re.search(r"fid ([0-9.eE+-]+) s", run.stderr)
        t_sit = float(m.group(1)) if m else float("nan")

    rel = abs(fid_sit - fid_np) / abs(fid_np)
    print(f"features: 2 x {args.n} x {args.d} float32")
    print(f"numpy np.cov + scipy sqrtm: FID {fid_np!r} in {t_np:.2f} s")
    print(f"sit-eval (statistics + distance): FID {fid_sit!r} in {t_sit:.2f} s "
          f"({t_sit_total:.2f} s with loading the npz files and process start)")
    print(f"speed-up {t_np / t_sit:.2f}x (with loading {t_np / t_sit_total:.2f}x); "
          f"relative difference {rel:.2e}")
    return 0 if rel < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
