#!/usr/bin/python3
"""SiT forward and SD VAE decode throughput: sit-eval's C++ modules (bench_models) against
the same computation in Debian's python3-torch, same threads, random weights, fp32.

usage: /usr/bin/python3 bench/compare_models.py build/bench/bench_models [--threads 2]

Prints a table of images/s (best of the repetitions) and the C++ / Python ratio."""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import model_reference as ref  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (bench/machine.py)


def sit_forward(sd, x, t, y, heads, patch):
    """The DiT/SiT forward as the reference model code computes it (batched heads)."""
    d = sd["x_embedder.proj.weight"].shape[0]
    b = x.shape[0]
    z = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=patch)
    z = z.flatten(2).transpose(1, 2) + sd["pos_embed"]
    freqs = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float32) / 128)
    arg = t[:, None] * freqs[None]
    temb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)
    temb = F.linear(F.silu(F.linear(temb, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])),
                    sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    c = F.silu(temb + F.embedding(y, sd["y_embedder.embedding_table.weight"]))
    n = z.shape[1]
    i = 0
    while "blocks.%d.attn.qkv.weight" % i in sd:
        p = "blocks.%d." % i
        m = F.linear(c, sd[p + "adaLN_modulation.1.weight"], sd[p + "adaLN_modulation.1.bias"]).chunk(6, dim=1)
        h = F.layer_norm(z, (d,), eps=1e-6) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1)
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        qkv = qkv.reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-2, -1) * (d // heads) ** -0.5, dim=-1)
        a = (att @ qkv[2]).transpose(1, 2).reshape(b, n, d)
        z = z + m[2].unsqueeze(1) * F.linear(a, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = F.layer_norm(z, (d,), eps=1e-6) * (1 + m[4].unsqueeze(1)) + m[3].unsqueeze(1)
        h = F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]), approximate="tanh")
        z = z + m[5].unsqueeze(1) * F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        i += 1
    m = F.linear(c, sd["final_layer.adaLN_modulation.1.weight"], sd["final_layer.adaLN_modulation.1.bias"]).chunk(2, dim=1)
    z = F.layer_norm(z, (d,), eps=1e-6) * (1 + m[1].unsqueeze(1)) + m[0].unsqueeze(1)
    z = F.linear(z, sd["final_layer.linear.weight"], sd["final_layer.linear.bias"])
    g = int(n ** 0.5)
    co = z.shape[-1] // (patch * patch)
    z = z.reshape(b, g, g, patch, patch, co).permute(0, 5, 1, 3, 2, 4).reshape(b, co, g * patch, g * patch)
    return z[:, :4]


def best_rate(fn, batch, min_time=3.0, repetitions=3):
    fn()  # warm-up
    best = 0.0
    for _ in range(repetitions):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, n * batch / elapsed)
    return best


def main():
    print(machine.describe())  # every number names its machine
    p = argparse.ArgumentParser()
    p.add_argument("bench_models")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    json_path = "/tmp/bench_models.%d.json" % os.getpid()
    subprocess.run([a.bench_models, "--threads", str(a.threads), "--benchmark_out=" + json_path,
                    "--benchmark_out_format=json"], check=True, stdout=sys.stderr)
    cpp = {}
    with open(json_path) as f:
        results = json.load(f)["benchmarks"]
    os.remove(json_path)
    for b in results:
        if b.get("run_type") == "iteration":
            name = b["run_name"].split("/min_time")[0].split("/iterations")[0]
            cpp[name] = max(cpp.get(name, 0.0), b["images/s"])

    rows = []
    with torch.inference_mode():
        for size, heads in (("S", 6), ("B", 12)):
            sd = ref.random_sit(size, 2, seed=0)
            for batch in (8, 32):
                x, t = torch.randn(batch, 4, 32, 32), torch.rand(batch)
                y = torch.randint(0, 1000, (batch,))
                py = best_rate(lambda: sit_forward(sd, x, t, y, heads, 2), batch)
                rows.append(("SiT-%s/2 batch %d" % (size, batch), cpp["SiTForward/SiT-%s/2/batch%d" % (size, batch)], py))
        cfg = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "latent_channels": 4,
               "out_channels": 3, "norm_num_groups": 32, "scaling_factor": 0.18215}
        sd = ref.random_vae(cfg, seed=0)
        z = torch.randn(2, 4, 32, 32)
        py = best_rate(lambda: ref.vae_decode(sd, cfg, z), 2, min_time=0.0, repetitions=2)
        rows.append(("VAE decode 256 px batch 2", cpp["VaeDecode/256px/batch2"], py))

    print("%d threads; images/s (best of repetitions)" % a.threads)
    print("| computation | C++ (sit-eval) | python3-torch | C++ / Python |")
    print("|---|---|---|---|")
    for name, c, py in rows:
        print("| %s | %.2f | %.2f | %.3f |" % (name, c, py, c / py))


if __name__ == "__main__":
    main()
