#!/usr/bin/python3
"""Exports DINOv2 ViT/14 (the torch.hub `dinov2_vit*14` backbones FD_DINOv2 uses) as
TorchScript for sit-eval's `dinov2` extractor.

The network is written here from metrics_modern.md section 1.4 (facebookresearch/dinov2's
DinoVisionTransformer as the hub builds it: patch 14, no register tokens, LayerScale,
exact GELU, LayerNorm eps 1e-6, head = identity) with the official state-dict key names,
so the released files load strictly:

  dinov2_vitl14_pretrain.pth   --arch vitl14   (1024-d, FD_DINOv2 of dgm-eval and EDM2)
  dinov2_vitb14_pretrain.pth   --arch vitb14   (768-d)
  dinov2_vits14_pretrain.pth   --arch vits14   (384-d)

The positional embedding is resampled once, here, from the 37 x 37 grid to the 16 x 16
grid of a 224 x 224 input exactly as the hub module does at run time (bicubic, A = -0.75,
scale factor (16 + 0.1) / 37) and stored in the file. The exported module takes a batch
already resized to 224 x 224 and normalised with ImageNet's mean and std (sit-eval does
that in C++), NCHW float32, and returns the CLS token after the final LayerNorm,
[N, embed_dim].

usage:
  /usr/bin/python3 tools/export_dinov2.py --arch vitl14 --weights dinov2_vitl14_pretrain.pth \\
      --out dinov2_vitl14.pt
  /usr/bin/python3 tools/export_dinov2.py --arch vits14 --random-weights 0 --out test-dinov2.pt
"""

import argparse
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = {  # embed_dim, depth, num_heads (head dim 64), as dinov2 hub/backbones.py
    "vits14": (384, 12, 6),
    "vitb14": (768, 12, 12),
    "vitl14": (1024, 24, 16),
    "vitg14": (1536, 40, 24),  # SwiGLU FFN in the real model: refused below
}
PATCH = 14
GRID = 37  # img_size 518 / 14
INPUT = 224
OFFSET = 0.1  # interpolate_offset


class PatchEmbed(nn.Module):
    def __init__(self, dim, device=None):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH, stride=PATCH, device=device)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # token t = 16 h + w


class Attention(nn.Module):
    def __init__(self, dim, heads, device=None):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, device=device)
        self.proj = nn.Linear(dim, dim, device=device)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, dim, device=None):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim, device=device))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim, hidden, device=None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, device=device)
        self.fc2 = nn.Linear(hidden, dim, device=device)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, device=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, device=device)
        self.attn = Attention(dim, heads, device)
        self.ls1 = LayerScale(dim, device)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, device=device)
        self.mlp = Mlp(dim, 4 * dim, device)
        self.ls2 = LayerScale(dim, device)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2(nn.Module):
    """State-dict keys as dinov2_vit*14 (cls_token, pos_embed, mask_token, patch_embed.proj,
    blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}, norm)."""

    def __init__(self, dim, depth, heads, device=None):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, device=device))
        self.pos_embed = nn.Parameter(torch.zeros(1, GRID * GRID + 1, dim, device=device))
        self.mask_token = nn.Parameter(torch.zeros(1, dim, device=device))  # unused at inference
        self.patch_embed = PatchEmbed(dim, device)
        self.blocks = nn.ModuleList([Block(dim, heads, device) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6, device=device)
        self.register_buffer("pos_embed_224", torch.zeros(1, (INPUT // PATCH) ** 2 + 1, dim,
                                                          device=device), persistent=False)

    def resample_pos_embed(self):
        """The hub module's interpolate_pos_encoding at 224 x 224, computed once."""
        with torch.no_grad():
            pos = self.pos_embed.float()
            dim = pos.shape[-1]
            w0 = INPUT // PATCH
            s = float(w0 + OFFSET) / GRID
            patch = F.interpolate(pos[:, 1:].reshape(1, GRID, GRID, dim).permute(0, 3, 1, 2),
                                  scale_factor=(s, s), mode="bicubic", antialias=False)
            assert patch.shape[-2:] == (w0, w0)
            patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
            self.pos_embed_224.copy_(torch.cat([pos[:, :1], patch], dim=1))

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed_224
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


def build(arch, device=None):
    if arch not in ARCHS:
        raise SystemExit("--arch must be one of %s, got %r" % (", ".join(ARCHS), arch))
    if arch == "vitg14":
        raise SystemExit("vitg14 uses a SwiGLU feed-forward that this exporter does not build")
    dim, depth, heads = ARCHS[arch]
    return DinoV2(dim, depth, heads, device=device)


def randomise(model, seed):
    """Random weights with sane activations: scaled linear layers, LayerScale near 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1 and not name.endswith(("cls_token", "pos_embed", "mask_token")):
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            elif name.endswith("gamma") or name.endswith("norm1.weight") or name.endswith(
                    "norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def load_weights(model, path):
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    sd = {k: v.float() for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise SystemExit("%s: not a DINOv2 %s state dict (missing %s, unexpected %s)"
                         % (path, "ViT", missing[:5], unexpected[:5]))
    for k, v in sd.items():
        if model.state_dict()[k].shape != v.shape:
            raise SystemExit("%s: %s has shape %s, expected %s" % (path, k, tuple(v.shape),
                                                                    tuple(model.state_dict()[k].shape)))


def export(model, out):
    model.eval()
    model.resample_pos_embed()
    traced = torch.jit.trace(model, torch.zeros(1, 3, INPUT, INPUT), check_trace=False)
    tmp = out + ".tmp"
    traced.save(tmp)
    os.replace(tmp, out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vitl14", help="vits14, vitb14 or vitl14 (default vitl14)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="the official dinov2_vit*14_pretrain.pth")
    src.add_argument("--random-weights", type=int, metavar="SEED", help="random weights (tests)")
    p.add_argument("--out", required=True, help="TorchScript file to write")
    a = p.parse_args()
    model = build(a.arch)
    if a.weights:
        load_weights(model, a.weights)
    else:
        randomise(model, a.random_weights)
    export(model, a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
