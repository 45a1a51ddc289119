#!/usr/bin/python3
"""Density and coverage from `sit-eval metrics --metrics dc` against an independent NumPy
implementation written from spec/metrics_modern.md section 3 (as prdc / dgm-eval compute
them: sklearn-style float64 Euclidean distances, the k-th neighbour radius counting the
zero self-distance, strict comparisons), on the committed feature fixtures and on shifted
copies of them.

usage: /usr/bin/python3 tests/python/check_density_coverage.py SIT_EVAL FIXTURES_DIR WORK_DIR
"""

import json
import os
import subprocess
import sys

import numpy as np


def distances(a, b):
    """sklearn.metrics.pairwise_distances(a, b, 'euclidean') for float64 inputs."""
    d = -2.0 * a @ b.T
    d += (a * a).sum(1)[:, None]
    d += (b * b).sum(1)[None, :]
    np.maximum(d, 0, out=d)
    return np.sqrt(d)


def density_coverage(real, fake, k=5):
    real = real.astype(np.float64)
    fake = fake.astype(np.float64)
    self_d = distances(real, real)
    np.fill_diagonal(self_d, 0.0)
    radii = np.partition(self_d, k, axis=1)[:, k]  # (k+1)-th smallest, self included
    d = distances(real, fake)  # (N, M)
    inside = d < radii[:, None]
    density = inside.sum() / (k * fake.shape[0])
    coverage = (d.min(axis=1) < radii).mean()
    return density, coverage


def main():
    sit_eval, fixtures, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    ref = np.load(os.path.join(fixtures, "features_ref.npz"))["pool"]
    smp = np.load(os.path.join(fixtures, "features_samples.npz"))["pool"]
    cases = [("fixtures", ref, smp)]
    rng = np.random.default_rng(0)
    for shift in (0.5, 2.0):
        moved = (smp + shift * rng.standard_normal(smp.shape[1])).astype(np.float32)
        cases.append(("shift %.1f" % shift, ref, moved))
    failures = 0
    for name, r, s in cases:
        rp, sp, out = (os.path.join(work, x) for x in ("r.npz", "s.npz", "m.json"))
        np.savez(rp, pool=r)
        np.savez(sp, pool=s)
        run = subprocess.run([sit_eval, "metrics", "--ref", rp, "--samples", sp, "--metrics", "dc",
                              "--json", out, "--threads", "1"], capture_output=True, text=True)
        if run.returncode != 0:
            print("sit-eval failed:", run.stderr)
            return 1
        got = json.load(open(out))
        want = density_coverage(r, s)
        for key, w in zip(("density", "coverage"), want):
            ok = abs(got[key] - w) <= 1e-12 * max(1.0, abs(w))
            print("%s %s: sit-eval %.12f numpy %.12f %s" % (name, key, got[key], w, "ok" if ok else "DIFFERS"))
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
