#!/usr/bin/python3
"""End to end: `sit-eval ref-stats`, `features` and `evaluate` on small synthetic image
sets through the random-weight NVIDIA-structured extractor, with every number checked
against a NumPy/SciPy computation (tests/fixtures/make_fixtures.py's ADM formulas) from
the same features; the reference cache, folder inputs and image-format errors.

usage: /usr/bin/python3 tests/python/check_evaluate.py SIT_EVAL INCEPTION_FIXTURES WORK_DIR
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import make_fixtures as adm  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def close(a, b, rel, what):
    check(abs(a - b) <= rel * max(abs(b), 1e-12), "%s: %.10g vs numpy %.10g" % (what, a, b))


def run(*args, expect=0):
    start = time.time()
    r = subprocess.run([SIT] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        raise SystemExit("sit-eval %s exited %d, expected %d" % (" ".join(map(str, args)), r.returncode, expect))
    print("     %.1f s: sit-eval %s" % (time.time() - start, args[0]))
    return r


def write_png(path, pixels, color_type):
    """Minimal PNG writer (8-bit, filter 0): gray (0), RGB (2) or RGBA (6)."""
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def images(rng, n, shift):
    base = rng.normal(110 + shift, 40, size=(n, 1, 1, 3)) + rng.normal(0, 30, size=(n, 20, 28, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


SIT, FIX, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
inception = os.path.join(FIX, "nvidia_like.pt")
rng = np.random.default_rng(3)
ref_images, smp_images = images(rng, 300, 0), images(rng, 240, 25)
np.savez(os.path.join(WORK, "ref_images.npz"), arr_0=ref_images)
np.savez(os.path.join(WORK, "samples.npz"), arr_0=smp_images, arr_1=np.arange(240))
common = ["--inception", inception, "--batch-size", "64", "--quiet"]

# ADM reference batch: stored statistics + the first 200 images.
run("ref-stats", os.path.join(WORK, "ref_images.npz"), "--out", os.path.join(WORK, "ref.npz"),
    "--keep-images", 200, *common)
run("features", os.path.join(WORK, "ref_images.npz"), "--out", os.path.join(WORK, "ref_feats.npz"), *common)
run("features", os.path.join(WORK, "samples.npz"), "--out", os.path.join(WORK, "smp_feats.h5"), *common)
run("features", os.path.join(WORK, "samples.npz"), "--out", os.path.join(WORK, "smp_feats.npz"), *common)
ref = np.load(os.path.join(WORK, "ref.npz"))
rf = np.load(os.path.join(WORK, "ref_feats.npz"))
sf = np.load(os.path.join(WORK, "smp_feats.npz"))
check(sorted(ref.files) == ["arr_0", "mu", "mu_s", "provenance", "sigma", "sigma_s"],
      "ref-stats keys %s" % sorted(ref.files))
check("sha256 " in json.loads(bytes(ref["provenance"]).decode())["extractor"],
      "ref-stats records its extractor")
check(np.array_equal(ref["arr_0"], ref_images[:200]), "ref-stats arr_0 = the first 200 images")
check(sf["pool"].shape == (240, 2048) and sf["spatial"].shape == (240, 2023) and sf["logits"].shape == (240, 1008),
      "feature shapes")
mu, sigma = adm.stats(rf["pool"])
check(np.allclose(ref["mu"], mu, rtol=1e-6, atol=1e-9) and np.allclose(ref["sigma"], sigma, rtol=1e-6, atol=1e-9),
      "stored mu / sigma = numpy mean / np.cov of the reference pool features")

# evaluate: stored statistics for FID/sFID, arr_0 (200 images) for precision/recall.
cache = os.path.join(WORK, "cache")
out_json = os.path.join(WORK, "metrics.json")
r1 = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "samples.npz"), "--json", out_json,
         "--cache-dir", cache, "--pr-distance", "fp32", "--inception", inception, "--batch-size", 64)
check("reference features cached" in r1.stderr, "first evaluate computes and caches the reference features")
got = json.load(open(out_json))
r2 = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "samples.npz"), "--cache-dir", cache,
         "--pr-distance", "fp32", "--inception", inception)
check("from the cache" in r2.stderr, "second evaluate reads the cache")
check(r1.stdout == r2.stdout, "cached run prints the same numbers")
check(r1.stdout.splitlines()[0].startswith("Inception Score: "), "ADM's first line")



def fd_eigen(mu1, s1, mu2, s2):
    """The Frechet distance by a second route (symmetric square roots from eigh): its
    agreement with scipy's sqrtm measures how well conditioned the statistics are."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(w.clip(0))) @ v.T
    e = np.linalg.eigvalsh(r @ s2 @ r)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(e.clip(0)).sum())


# Tolerance 1e-5 relative: float64 statistics of float32 features from the same rows;
# both FD routes in NumPy must agree 100 times better on this fixture (checked), so the
# statistics are not near-singular enough for rounding to decide the verdict.
for key, mu, sigma, name in (("pool", "mu", "sigma", "FID"), ("spatial", "mu_s", "sigma_s", "sFID")):
    m1, s1 = adm.stats(sf[key])
    want = adm.fd(m1, s1, ref[mu], ref[sigma])
    routes = abs(fd_eigen(m1, s1, ref[mu], ref[sigma]) - want) / want
    check(routes < 1e-7, "fixture conditioning: %s by sqrtm and by eigh agree to %.1e" % (name, routes))
    close(got[key.replace("pool", "fid").replace("spatial", "sfid")], want, 1e-5, name)
close(got["inception_score"], adm.adm_inception_score(sf["logits"])[0], 1e-5, "Inception Score")


def pr_bounds(real, fake, k=3):
    """(precision, recall) computed in float64, and the range each can take when every
    comparison of a squared distance with a k-NN radius that lies within fp32 rounding
    of it may go either way. An fp32 squared distance |x - y|^2 = |x|^2 + |y|^2 - 2 x.y
    errs by about sqrt(D) * 2^-24 * (|x|^2 + |y|^2) for any BLAS kernel and summation
    order (rounding errors of a length-D dot product add up like a random walk); the
    radius is such a distance too. We allow 4 times that: a comparison closer than this
    is 'ambiguous'; every other one has one right answer, which sit-eval must give."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    n2r, n2f = (real ** 2).sum(1), (fake ** 2).sum(1)

    def d2(a, na, b, nb):
        return (na[:, None] + nb[None, :] - 2 * a @ b.T).clip(0)

    def side(a, na, b, nb):
        """Fraction of rows of b inside some ball of a: (exact, lowest, highest)."""
        daa = d2(a, na, a, na)
        nbr = np.argpartition(daa, k, axis=1)[:, k]
        radii = daa[np.arange(len(a)), nbr]
        dba = d2(b, nb, a, na)
        slack = 4 * np.sqrt(a.shape[1]) * 2.0 ** -24 * (nb[:, None] + 2 * na[None, :] + na[nbr][None, :])
        inside = (dba <= radii[None, :]).any(1)
        surely = (dba <= radii[None, :] - slack).any(1)
        maybe = (dba <= radii[None, :] + slack).any(1)
        return inside.mean(), surely.mean(), maybe.mean()

    return side(real, n2r, fake, n2f), side(fake, n2f, real, n2r)


(p, p_lo, p_hi), (rcl, r_lo, r_hi) = pr_bounds(rf["pool"][:200], sf["pool"])
check(p_hi - p_lo <= 3 / 240 and r_hi - r_lo <= 3 / 200,
      "fixture conditioning: at most 3 points within fp32 rounding of a k-NN radius "
      "(precision %.4f..%.4f, recall %.4f..%.4f)" % (p_lo, p_hi, r_lo, r_hi))
check(p_lo <= got["precision"] <= p_hi, "precision: %.6f, float64 %.6f (rounding allows %.6f..%.6f)"
      % (got["precision"], p, p_lo, p_hi))
check(r_lo <= got["recall"] <= r_hi, "recall: %.6f, float64 %.6f (rounding allows %.6f..%.6f)"
      % (got["recall"], rcl, r_lo, r_hi))
check(0.05 < p < 0.95 and 0.05 < rcl < 0.95, "precision/recall informative (%.3f, %.3f)" % (p, rcl))

# SAMPLES given as a feature file gives the same numbers; so does the HDF5 store.
r3 = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "smp_feats.h5"), "--cache-dir", cache,
         "--pr-distance", "fp32", "--inception", inception)
check(r3.stdout == r1.stdout, "features file as SAMPLES: same output")

# A folder of PNGs holds the same images as the npz: identical features.
folder = os.path.join(WORK, "png")
os.makedirs(folder)
for i in range(12):
    write_png(os.path.join(folder, "%03d.png" % i), smp_images[i], 2)
with open(os.path.join(folder, "notes.txt"), "w") as f:
    f.write("ignored\n")
run("features", folder, "--out", os.path.join(WORK, "folder.npz"), *common)
# Compared with an npz of the same 12 images, so both runs have the same batches: the
# network's kernels may differ with the batch size (bitwise equality is not promised there).
np.savez(os.path.join(WORK, "first12.npz"), arr_0=smp_images[:12])
run("features", os.path.join(WORK, "first12.npz"), "--out", os.path.join(WORK, "first12_f.npz"), *common)
fo = np.load(os.path.join(WORK, "folder.npz"))
check(np.array_equal(fo["pool"], np.load(os.path.join(WORK, "first12_f.npz"))["pool"]),
      "PNG folder features = npz features of the same images")
check(np.allclose(fo["pool"], sf["pool"][:12], rtol=1e-4, atol=1e-4 * np.abs(sf["pool"]).max()),
      "and close to the same rows extracted in batches of 64")

# Grayscale PNGs are converted to RGB (equal to the replicated channels); RGBA is refused.
gray = os.path.join(WORK, "gray")
os.makedirs(gray)
write_png(os.path.join(gray, "a.png"), smp_images[0, :, :, 0].copy(), 0)
np.savez(os.path.join(WORK, "gray_rgb.npz"), arr_0=np.repeat(smp_images[:1, :, :, :1], 3, axis=3))
run("features", gray, "--out", os.path.join(WORK, "gray.npz"), *common)
run("features", os.path.join(WORK, "gray_rgb.npz"), "--out", os.path.join(WORK, "gray_rgb_f.npz"), *common)
check(np.array_equal(np.load(os.path.join(WORK, "gray.npz"))["pool"],
                     np.load(os.path.join(WORK, "gray_rgb_f.npz"))["pool"]), "grayscale PNG = replicated RGB")
rgba = os.path.join(WORK, "rgba")
os.makedirs(rgba)
write_png(os.path.join(rgba, "a.png"), np.dstack([smp_images[0], np.full((20, 28, 1), 255, np.uint8)]), 6)
r = run("features", rgba, "--out", os.path.join(WORK, "rgba.npz"), *common, expect=1)
check("alpha channel" in r.stderr and "a.png" in r.stderr, "RGBA refused naming the file: " + r.stderr.strip())
check(not os.path.exists(os.path.join(WORK, "rgba.npz")), "nothing written on error")
r = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "samples.npz"), "--cache-dir", cache,
        "--inception", os.path.join(WORK, "ref.npz"), expect=1)
check("TorchScript" in r.stderr, "bad --inception explained: " + r.stderr.strip())

# features written to .npz carry their provenance as JSON text
prov = json.loads(bytes(sf["provenance"]).decode())
check(prov["count"] == 240 and "sha256" in prov["extractor"] and "samples.npz" in prov["source"],
      "npz provenance: %s" % prov)

# An ADM batch with arr_0 and stored statistics as SAMPLES (ADM's evaluator on a reference
# batch against itself): FID/sFID from the stored statistics, IS and P/R from arr_0.
r = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "ref.npz"), "--cache-dir", cache,
        "--pr-distance", "fp32", "--inception", inception, "--json", os.path.join(WORK, "self.json"), "--quiet")
self_metrics = json.load(open(os.path.join(WORK, "self.json")))
check(abs(self_metrics["fid"]) < 1e-6 * np.trace(ref["sigma"]) and abs(self_metrics["sfid"]) < 1e-6 * np.trace(ref["sigma_s"]),
      "ADM batch as SAMPLES: FID/sFID from its stored statistics (%g, %g)" % (self_metrics["fid"], self_metrics["sfid"]))
close(self_metrics["inception_score"], adm.adm_inception_score(rf["logits"][:200])[0], 1e-5,
      "ADM batch as SAMPLES: IS of its arr_0")
check(self_metrics["precision"] == 1.0 and self_metrics["recall"] == 1.0,
      "ADM batch as SAMPLES: P/R of arr_0 against itself are 1")

# --metrics kid alone computes KID from the reference's arr_0 features.
r = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "smp_feats.h5"), "--cache-dir", cache,
        "--inception", inception, "--metrics", "kid")
check(r.stdout.startswith("KID: "), "--metrics kid prints KID: " + r.stdout.strip())

# Refusals before any image is extracted: each names the file; no progress line appears.
np.savez(os.path.join(WORK, "narrow_ref.npz"), mu=np.zeros(16), sigma=np.eye(16))
np.savez(os.path.join(WORK, "no_images.npz"), x=np.zeros(3), y=np.ones(2))
run("ref-stats", os.path.join(WORK, "ref_images.npz"), "--out", os.path.join(WORK, "tiny_ref.npz"),
    "--keep-images", 2, *common)
for args, fragment in (
        (("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "samples.npz"), "--json",
          os.path.join(WORK, "nodir", "m.json")), "--json %s: no folder" % os.path.join(WORK, "nodir", "m.json")),
        (("evaluate", os.path.join(WORK, "narrow_ref.npz"), os.path.join(WORK, "samples.npz")),
         "narrow_ref.npz: 'mu' has 16 dimensions, but the extractor gives 2048 for 'pool'"),
        (("evaluate", os.path.join(WORK, "tiny_ref.npz"), os.path.join(WORK, "samples.npz")),
         "tiny_ref.npz: 2 reference images/rows; precision/recall needs at least k + 1 = 4"),
        (("features", os.path.join(WORK, "samples.npz"), "--out", os.path.join(WORK, "f.csv")),
         "--out %s: the file name must end in .h5, .hdf5, .npz" % os.path.join(WORK, "f.csv")),
        (("features", os.path.join(WORK, "no_images.npz"), "--out", os.path.join(WORK, "f.h5")),
         "no_images.npz: npz without arr_0 (the images); it holds x, y")):
    extra = ("--cache-dir", cache) if args[0] == "evaluate" else ()
    r = run(*args, *extra, "--inception", inception, expect=1)
    check(fragment in r.stderr and "images" not in r.stderr.replace(fragment, "").split("error:")[0],
          "refused before extraction: " + r.stderr.strip())
check(not os.path.exists(os.path.join(WORK, "f.h5")), "nothing written on refusal")

# Features made by another extractor than the one in use are refused, naming both files'
# SHA-256 (here this run extracts with the canonical file, while the reference's
# statistics and the sample features came from the NVIDIA-structured one: the reference,
# checked first, is named).
r = run("evaluate", os.path.join(WORK, "ref.npz"), os.path.join(WORK, "smp_feats.h5"), "--cache-dir", cache,
        "--inception", os.path.join(FIX, "canonical.pt"), "--metrics", "precision", expect=1)
sha_nvidia = prov["extractor"].split("sha256 ")[1][:64]
check("ref.npz: its features were made by" in r.stderr and sha_nvidia in r.stderr and "canonical" in r.stderr
      and "not comparable" in r.stderr, "extractor mismatch refused naming both: " + r.stderr.strip())

if failures:
    raise SystemExit("%d checks failed" % len(failures))
print("all evaluate checks passed")
