#!/usr/bin/python3
"""Writes random-weight stand-ins for the downloads of a FID-50K recipe, to try the whole
pipeline (sampling, VAE decoding, Inception features, metrics) before fetching the real
files (README "Reproducing published numbers"):

  OUT/SiT-<size>-<patch>-256.pt   a SiT checkpoint in the released layout (plain state dict
                                  with learn_sigma: final_layer.linear has 2 x 4 channels)
  OUT/sd-vae-ft-ema/             a diffusers AutoencoderKL folder (config.json and
                                  diffusion_pytorch_model.bin; decoder weights only): the
                                  SD VAE's shape, or a 2-block one with --small-vae
  OUT/reference.npz              an ADM-style reference batch: arr_0 uint8 [N, S, S, 3] of
                                  random images, S = 256 (64 with --small-vae); sit-eval
                                  extracts their features

The Inception stand-in comes from tools/export_inception.py --random-weights. The numbers
such a run prints mean nothing; the files exercise every code path of the real ones.

usage:
  /usr/bin/python3 tools/random_weights.py --out DIR [--size S|B|L|XL] [--patch 2|4|8]
      [--small-vae] [--reference-images 64] [--seed 0]
"""

import argparse
import json
import math
import os

import numpy as np
import torch

# depth, hidden width (heads come from the width in sit-eval, as in SiT's models.py)
SIZES = {"S": (12, 384), "B": (12, 768), "L": (24, 1024), "XL": (28, 1152)}


def sit_state_dict(size, patch, g, classes=1000, latent=32, channels=4):
    depth, d = SIZES[size]
    tokens = (latent // patch) ** 2
    out = 2 * channels * patch * patch  # learn_sigma: mean and variance channels

    def w(*shape):
        return torch.randn(*shape, generator=g) / math.sqrt(shape[-1] if len(shape) == 2 else
                                                            int(np.prod(shape[1:])))

    def b(n):
        return 0.02 * torch.randn(n, generator=g)

    grid = latent // patch
    q = d // 4
    omega = 1.0 / 10000 ** (np.arange(q) / q)
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    pos = np.concatenate([np.sin(np.outer(cols.ravel(), omega)), np.cos(np.outer(cols.ravel(), omega)),
                          np.sin(np.outer(rows.ravel(), omega)), np.cos(np.outer(rows.ravel(), omega))],
                         axis=1)
    sd = {
        "pos_embed": torch.from_numpy(pos.astype(np.float32)).reshape(1, tokens, d),
        "x_embedder.proj.weight": w(d, channels, patch, patch), "x_embedder.proj.bias": b(d),
        "t_embedder.mlp.0.weight": w(d, 256), "t_embedder.mlp.0.bias": b(d),
        "t_embedder.mlp.2.weight": w(d, d), "t_embedder.mlp.2.bias": b(d),
        "y_embedder.embedding_table.weight": torch.randn(classes + 1, d, generator=g),
    }
    for i in range(depth):
        p = "blocks.%d." % i
        sd.update({p + "attn.qkv.weight": w(3 * d, d), p + "attn.qkv.bias": b(3 * d),
                   p + "attn.proj.weight": w(d, d), p + "attn.proj.bias": b(d),
                   p + "mlp.fc1.weight": w(4 * d, d), p + "mlp.fc1.bias": b(4 * d),
                   p + "mlp.fc2.weight": w(d, 4 * d), p + "mlp.fc2.bias": b(d),
                   p + "adaLN_modulation.1.weight": 0.1 * w(6 * d, d),
                   p + "adaLN_modulation.1.bias": b(6 * d)})
    sd.update({"final_layer.linear.weight": w(out, d), "final_layer.linear.bias": b(out),
               "final_layer.adaLN_modulation.1.weight": 0.1 * w(2 * d, d),
               "final_layer.adaLN_modulation.1.bias": b(2 * d)})
    return sd


def vae_state_dict(cfg, g):
    """Decoder keys of diffusers' AutoencoderKL (the part sit-eval loads)."""
    blocks, lat, groups = cfg["block_out_channels"], cfg["latent_channels"], {}
    top = blocks[-1]

    def conv(name, cout, cin, k):
        groups[name + ".weight"] = torch.randn(cout, cin, k, k, generator=g) / math.sqrt(cin * k * k)
        groups[name + ".bias"] = 0.02 * torch.randn(cout, generator=g)

    def norm(name, c):
        groups[name + ".weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        groups[name + ".bias"] = 0.1 * torch.randn(c, generator=g)

    def resnet(name, cin, cout):
        norm(name + ".norm1", cin)
        conv(name + ".conv1", cout, cin, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(name + ".conv_shortcut", cout, cin, 1)

    conv("post_quant_conv", lat, lat, 1)
    conv("decoder.conv_in", top, lat, 3)
    resnet("decoder.mid_block.resnets.0", top, top)
    norm("decoder.mid_block.attentions.0.group_norm", top)
    for n in ("to_q", "to_k", "to_v", "to_out.0"):
        groups["decoder.mid_block.attentions.0.%s.weight" % n] = \
            torch.randn(top, top, generator=g) / math.sqrt(top)
        groups["decoder.mid_block.attentions.0.%s.bias" % n] = 0.02 * torch.randn(top, generator=g)
    resnet("decoder.mid_block.resnets.1", top, top)
    prev = top
    for i, c in enumerate(reversed(blocks)):
        for j in range(cfg["layers_per_block"] + 1):
            resnet("decoder.up_blocks.%d.resnets.%d" % (i, j), prev if j == 0 else c, c)
            prev = c
        if i < len(blocks) - 1:
            conv("decoder.up_blocks.%d.upsamplers.0.conv" % i, c, c, 3)
    norm("decoder.conv_norm_out", blocks[0])
    conv("decoder.conv_out", cfg["out_channels"], blocks[0], 3)
    return groups


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--size", default="S", choices=sorted(SIZES), help="SiT size (default S)")
    p.add_argument("--patch", type=int, default=2, choices=(2, 4, 8))
    p.add_argument("--small-vae", action="store_true",
                   help="a 2-block VAE (channels 32, 64; 2x upsampling where the real one "
                        "has 8x: 64 px images from 32 x 32 latents) instead of the SD VAE's "
                        "shape, for a fast CPU try")
    p.add_argument("--reference-images", type=int, default=64,
                   help="random images in reference.npz (default 64)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.reference_images < 2:
        p.error("--reference-images: expected at least 2, got %d" % a.reference_images)
    os.makedirs(a.out, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)

    name = "SiT-%s-%d-256.pt" % (a.size, a.patch)
    torch.save(sit_state_dict(a.size, a.patch, g), os.path.join(a.out, name))

    cfg = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3,
           "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
           "block_out_channels": [128, 256, 512, 512], "scaling_factor": 0.18215,
           "sample_size": 256}
    if a.small_vae:
        cfg.update(block_out_channels=[32, 64], layers_per_block=1, norm_num_groups=8)
    vae_dir = os.path.join(a.out, "sd-vae-ft-ema")
    os.makedirs(vae_dir, exist_ok=True)
    torch.save(vae_state_dict(cfg, g), os.path.join(vae_dir, "diffusion_pytorch_model.bin"))
    with open(os.path.join(vae_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    rng = np.random.default_rng(a.seed)
    side = 256 if not a.small_vae else 64
    images = rng.integers(0, 256, size=(a.reference_images, side, side, 3), dtype=np.uint8)
    np.savez(os.path.join(a.out, "reference.npz"), arr_0=images)
    print("wrote %s, %s/ (%s VAE), reference.npz (%d random %dx%d images) in %s"
          % (name, "sd-vae-ft-ema", "2-block" if a.small_vae else "SD-shaped",
             a.reference_images, side, side, a.out))


if __name__ == "__main__":
    main()
