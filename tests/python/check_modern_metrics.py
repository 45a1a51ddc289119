#!/usr/bin/python3
"""FD_DINOv2, precision/recall in DINOv2 space, CMMD, FID-infinity and intra-FID from
`sit-eval metrics` against independent NumPy/SciPy implementations written from
spec/metrics_modern.md (sections 1, 2.3, 4.4 and 5) and evaluator.md (Frechet distance
with scipy's sqrtm, ADM's k = 3 precision/recall), on feature files with every block
and labels. Then EDM2 reference pickles: files Python writes at protocols 2 to 5 load
in `sit-eval convert-ref`, and the pickle sit-eval writes loads in Python as the same dict.

usage: /usr/bin/python3 tests/python/check_modern_metrics.py SIT_EVAL WORK_DIR
"""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
from scipy import linalg

MASK = (1 << 64) - 1


class SplitMix64:
    """metrics_modern.md section 0."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def permutation(self, n):
        a = list(range(n))
        for i in range(n - 1, 0, -1):
            j = int(self.uniform() * (i + 1))
            a[i], a[j] = a[j], a[i]
        return a


def stats(x):
    x = x.astype(np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def fd(s1, s2):
    """ADM / dgm-eval: sqrtm of the product, real part."""
    (m1, c1), (m2, c2) = s1, s2
    covmean, _ = linalg.sqrtm(c1.dot(c2), disp=False)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean.real))


def cmmd(x, y, sigma=10.0):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    g = 1.0 / (2 * sigma * sigma)

    def k(a, b):
        d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-g * d).mean()

    return 1000 * (k(x, x) + k(y, y) - 2 * k(x, y))


def fd_infinity(samples, ref_stats, seed):
    m = samples.shape[0]
    start = min(5000, max(m // 10, 2))
    grid = np.linspace(start, m, 15).astype(np.int32)
    stream = SplitMix64(seed)
    xs, ys = [], []
    for n in grid:
        idx = stream.permutation(m)[:n]
        ys.append(fd(stats(samples[idx]), ref_stats))
        xs.append(1.0 / n)
    b, a = np.polyfit(xs, ys, 1)
    return a


def intra_fid(smp, smp_labels, ref, ref_labels):
    return float(np.mean([fd(stats(smp[smp_labels == c]), stats(ref[ref_labels == c]))
                          for c in np.unique(ref_labels)]))


def precision_recall(real, fake, k=3):
    """ADM's improved precision/recall: squared distances, radius = (k+1)-th smallest
    including self, <=."""
    real = real.astype(np.float64)
    fake = fake.astype(np.float64)

    def d2(a, b):
        return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T

    r_real = np.sort(d2(real, real), axis=1)[:, k]
    r_fake = np.sort(d2(fake, fake), axis=1)[:, k]
    d = d2(real, fake)
    precision = (d <= r_real[:, None]).any(axis=0).mean()
    recall = (d <= r_fake[None, :]).any(axis=1).mean()
    return precision, recall


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
    return r


def check_metrics(sit_eval, work):
    rng = np.random.default_rng(7)
    classes = 4

    def features(n, shift):
        labels = np.repeat(np.arange(classes), n // classes)
        pool = rng.standard_normal((n, 16)) + 0.6 * labels[:, None] * (np.arange(16) % classes == labels[:, None])
        return {"pool": (pool + shift).astype(np.float32),
                "dinov2": (rng.standard_normal((n, 12)) * (1 + shift)).astype(np.float32),
                "clip": (rng.standard_normal((n, 24)) + 0.3 + shift).astype(np.float32),
                "labels": labels.astype(np.int64)}

    ref, smp = features(400, 0.0), features(240, 0.15)
    rp, sp, out = (os.path.join(work, x) for x in ("ref.npz", "samples.npz", "m.json"))
    np.savez(rp, **ref)
    np.savez(sp, **smp)
    run([sit_eval, "--threads", "1", "metrics", "--ref", rp, "--samples", sp, "--metrics",
         "fd_dinov2,pr_dinov2,cmmd,fid_infinity,intra_fid", "--pr-distance", "fp32", "--seed", "3",
         "--json", out])
    got = json.load(open(out))
    want = {"fd_dinov2": fd(stats(smp["dinov2"]), stats(ref["dinov2"])),
            "cmmd": cmmd(ref["clip"], smp["clip"]),
            "fid_infinity": fd_infinity(smp["pool"].astype(np.float64), stats(ref["pool"]), 3),
            "intra_fid": intra_fid(smp["pool"], smp["labels"], ref["pool"], ref["labels"])}
    want["precision_dinov2"], want["recall_dinov2"] = precision_recall(ref["dinov2"], smp["dinov2"])
    failures = 0
    # the per-class values behind intra-FID
    for c in range(classes):
        value = fd(stats(smp["pool"][smp["labels"] == c]), stats(ref["pool"][ref["labels"] == c]))
        entry = got.get("per_class_fid", {}).get(str(c), {})
        ok = abs(entry.get("fid", float("nan")) - value) <= 1e-8 * max(1.0, value) and entry.get("samples") == 60
        print("per-class FID %d   sit-eval %.12g numpy %.12g %s" % (c, entry.get("fid", float("nan")), value,
                                                                 "ok" if ok else "MISMATCH"))
        failures += not ok
    for key, value in want.items():
        ok = abs(got.get(key, float("nan")) - value) <= 1e-8 * max(1.0, abs(value))
        print("%-17s sit-eval %.12g numpy %.12g %s" % (key, got.get(key, float("nan")), value,
                                                         "ok" if ok else "MISMATCH"))
        failures += not ok
    return failures


def numpy_reference(d, rng):
    a = rng.standard_normal((d + 3, d))
    return {"mu": rng.standard_normal(d), "sigma": a.T @ a / d}


def check_pickles(sit_eval, work):
    rng = np.random.default_rng(1)
    ref = {"num_images": 1281167, "fid": numpy_reference(8, rng), "fd_dinov2": numpy_reference(5, rng)}
    failures = 0
    for protocol in (2, 3, 4, 5):
        path = os.path.join(work, "edm2_p%d.pkl" % protocol)
        with open(path, "wb") as f:
            pickle.dump(ref, f, protocol=protocol)
        npz = os.path.join(work, "edm2_p%d.npz" % protocol)
        run([sit_eval, "convert-ref", path, "--out", npz])
        z = np.load(npz)
        ok = (np.array_equal(z["mu"], ref["fid"]["mu"]) and np.array_equal(z["sigma"], ref["fid"]["sigma"])
              and np.array_equal(z["mu_dinov2"], ref["fd_dinov2"]["mu"])
              and np.array_equal(z["sigma_dinov2"], ref["fd_dinov2"]["sigma"]))
        print("EDM2 pickle protocol %d -> npz: %s" % (protocol, "ok" if ok else "MISMATCH"))
        failures += not ok
    # and back: sit-eval's pickle is EDM2's dict for Python
    back = os.path.join(work, "back.pkl")
    run([sit_eval, "convert-ref", os.path.join(work, "edm2_p2.npz"), "--out", back])
    with open(back, "rb") as f:
        d = pickle.load(f)
    ok = (sorted(d) == ["fd_dinov2", "fid", "num_images"] and d["num_images"] == 1281167
          and all(np.array_equal(d[k][a], ref[k][a]) and d[k][a].dtype == np.float64
                  for k in ("fid", "fd_dinov2") for a in ("mu", "sigma")))
    print("npz -> EDM2 pickle read by Python: %s" % ("ok" if ok else "MISMATCH"))
    failures += not ok
    # pickles that are not EDM2 references: clear errors naming the file and the key
    bad = [({"num_images": 3, "other": 1}, "must hold 'fid' and/or 'fd_dinov2' statistics, got keys 'num_images', 'other'"),
           ({"fid": {"mu": np.zeros(4), "sigma": np.eye(3)}}, "['fid']['sigma'] must be [4, 4], got shape (3, 3)"),
           ({"fid": {"mu": np.zeros(4, np.int64), "sigma": np.eye(4)}}, "must be float64 (or float32), got dtype 'i8'"),
           ({"fd_dinov2": {"sigma": np.eye(4)}}, "['fd_dinov2']: must hold 'mu' and 'sigma'"),
           ([1, 2], "must hold a dict")]
    for i, (content, message) in enumerate(bad):
        path = os.path.join(work, "bad%d.pkl" % i)
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=4)
        r = subprocess.run([sit_eval, "convert-ref", path, "--out", os.path.join(work, "bad.npz")],
                           capture_output=True, text=True)
        ok = r.returncode == 1 and message in r.stderr and path in r.stderr and "error:" in r.stderr
        print("bad pickle %d: %s" % (i, "ok" if ok else "UNCLEAR: " + r.stderr.strip()))
        failures += not ok
    return failures


def main():
    sit_eval, work = sys.argv[1:3]
    os.makedirs(work, exist_ok=True)
    failures = check_metrics(sit_eval, work) + check_pickles(sit_eval, work)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
