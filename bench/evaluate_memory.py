#!/usr/bin/python3
"""Peak memory of `sit-eval evaluate` at 50,000 samples: what keeping blocks as
statistics saves.

A tiny TorchScript extractor of the canonical kind (pool 2048, spatial 2023, logits 1008
from a 4 x 4 average pool of the preprocessed image: the network costs nothing, so the
measurement is the pipeline's own memory) scores 50,000 16 x 16 images against an ADM
reference batch made from 1,000 of them. Each given sit-eval binary runs twice under
/usr/bin/time -v: the default metrics (IS and precision/recall need logits and pool
rows; sFID needs spatial statistics only) and --metrics fid,sfid (statistics only).

usage: /usr/bin/python3 bench/evaluate_memory.py WORK_DIR SIT_EVAL [SIT_EVAL_BEFORE]
"""

import os
import re
import subprocess
import sys

import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)

N = 50_000


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.Mixed_6d = torch.nn.Linear(48, 2023)  # the names mark the canonical kind
        self.fc = torch.nn.Linear(48, 1008)
        self.pool = torch.nn.Linear(48, 2048)

    def forward(self, x):
        h = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.relu(self.pool(h)), self.Mixed_6d(h), self.fc(h)


def peak_mib(binary, args):
    r = subprocess.run(["/usr/bin/time", "-v", binary, "--threads", "2"] + args,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr).group(1)
    return kib / 1024, wall


def main():
    print(machine.describe())  # every number names its machine
    work, binaries = sys.argv[1], sys.argv[2:]
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    extractor = os.path.join(work, "tiny.pt")
    torch.jit.script(Tiny().eval()).save(extractor)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 16, 16, 3), dtype=np.uint8)
    samples = os.path.join(work, "samples.npz")
    np.savez(samples, arr_0=images)
    np.savez(os.path.join(work, "ref_images.npz"), arr_0=images[:1000])
    ref = os.path.join(work, "ref.npz")
    subprocess.run([binaries[0], "ref-stats", os.path.join(work, "ref_images.npz"), "--out", ref,
                    "--keep-images", "1000", "--inception", extractor, "--quiet"], check=True)
    cache = os.path.join(work, "cache")
    print("| binary | --metrics | peak RSS (MiB) | wall |")
    print("|---|---|---|---|")
    for binary in binaries:
        for metrics in ("fid,sfid,is,pr", "fid,sfid"):
            mib, wall = peak_mib(binary, ["evaluate", ref, samples, "--inception", extractor,
                                          "--metrics", metrics, "--cache-dir", cache, "--quiet",
                                          "--batch-size", "500"])
            print("| %s | %s | %.0f | %s |" % (binary, metrics, mib, wall))


if __name__ == "__main__":
    main()
