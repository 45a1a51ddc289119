#!/usr/bin/python3
"""Exports the image tower of OpenAI CLIP ViT-L/14@336px (the embedding CMMD uses) as
TorchScript for sit-eval's `clip` extractor.

The tower is written here from metrics_modern.md section 2.1 (openai/CLIP model.py:
VisionTransformer with a bias-free patch convolution, class token, ln_pre, pre-norm
residual blocks with nn.MultiheadAttention's packed q/k/v projection and QuickGELU,
ln_post on the class token, then the projection), with the checkpoint's key names under
`visual.`. The released file is a TorchScript archive (ViT-L-14-336px.pt, SHA-256
3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02); its fp16 values are
widened to fp32.

The exported module takes a batch already centre-cropped, resized to 336 x 336 and
normalised with CLIP's mean and std (sit-eval does that in C++), NCHW float32, and returns
the projected image embedding [N, 768], not normalised (CMMD L2-normalises it).

usage:
  /usr/bin/python3 tools/export_clip.py --weights ViT-L-14-336px.pt --out clip_vitl14_336.pt
  /usr/bin/python3 tools/export_clip.py --random-weights 0 --width 128 --layers 2 \\
      --output-dim 64 --out test-clip.pt     (a small tower of the same layout, for tests)
"""

import argparse
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.LayerNorm):
    """CLIP's LayerNorm: computed in float32 (eps 1e-5)."""

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class Attention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight rows: q, k, v), no mask."""

    def __init__(self, width, heads, device=None):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(width // heads)
        self.in_proj_weight = nn.Parameter(torch.zeros(3 * width, width, device=device))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width, device=device))
        self.out_proj = nn.Linear(width, width, device=device)

    def forward(self, x):
        b, n, c = x.shape
        hd = c // self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q = q.reshape(b, n, self.heads, hd).transpose(1, 2) * self.scale
        k = k.reshape(b, n, self.heads, hd).transpose(1, 2)
        v = v.reshape(b, n, self.heads, hd).transpose(1, 2)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, width, device=None):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width, device=device)
        self.c_proj = nn.Linear(4 * width, width, device=device)

    def forward(self, x):
        h = self.c_fc(x)
        return self.c_proj(h * torch.sigmoid(1.702 * h))  # QuickGELU


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, device=None):
        super().__init__()
        self.attn = Attention(width, heads, device)
        self.ln_1 = LayerNorm(width, device=device)
        self.mlp = Mlp(width, device)
        self.ln_2 = LayerNorm(width, device=device)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, device=None):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, device) for _ in range(layers)])

    def forward(self, x):
        for blk in self.resblocks:
            x = blk(x)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size=336, patch=14, width=1024, layers=24, heads=16, output_dim=768,
                 device=None):
        super().__init__()
        grid = image_size // patch
        self.image_size = image_size
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False, device=device)
        self.class_embedding = nn.Parameter(torch.zeros(width, device=device))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width, device=device))
        self.ln_pre = LayerNorm(width, device=device)
        self.transformer = Transformer(width, layers, heads, device)
        self.ln_post = LayerNorm(width, device=device)
        self.proj = nn.Parameter(torch.zeros(width, output_dim, device=device))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)  # token t = grid h + w
        cls = self.class_embedding.to(x.dtype).reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0, :]) @ self.proj


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name in (
                    "ln_pre.weight", "ln_post.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() > 1 and name != "positional_embedding":
                fan_in = p.shape[0] if name == "proj" else p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def read_checkpoint(path):
    """The `visual.` tensors of OpenAI's file (a TorchScript archive) or of a plain state dict."""
    try:
        sd = torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        sd = torch.load(path, map_location="cpu")
    visual = {k[len("visual."):]: v.float() for k, v in sd.items() if k.startswith("visual.")}
    if not visual:
        raise SystemExit("%s: no 'visual.' tensors: not an OpenAI CLIP checkpoint" % path)
    return visual


def model_for(visual, path):
    width = visual["conv1.weight"].shape[0]
    patch = visual["conv1.weight"].shape[-1]
    grid = round((visual["positional_embedding"].shape[0] - 1) ** 0.5)
    layers = len({k.split(".")[2] for k in visual if k.startswith("transformer.resblocks.")})
    model = VisionTransformer(grid * patch, patch, width, layers, width // 64, visual["proj"].shape[1])
    missing, unexpected = model.load_state_dict(visual, strict=False)
    if missing or unexpected:
        raise SystemExit("%s: not a CLIP ViT image tower (missing %s, unexpected %s)"
                         % (path, missing[:5], unexpected[:5]))
    return model


def export(model, out):
    model.eval()
    x = torch.zeros(1, 3, model.image_size, model.image_size)
    traced = torch.jit.trace(model, x, check_trace=False)
    tmp = out + ".tmp"
    traced.save(tmp)
    os.replace(tmp, out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="OpenAI's ViT-L-14-336px.pt")
    src.add_argument("--random-weights", type=int, metavar="SEED", help="random weights (tests)")
    p.add_argument("--width", type=int, default=1024, help="random weights: tower width")
    p.add_argument("--layers", type=int, default=24, help="random weights: blocks")
    p.add_argument("--output-dim", type=int, default=768, help="random weights: embedding width")
    p.add_argument("--out", required=True, help="TorchScript file to write")
    a = p.parse_args()
    if a.weights:
        model = model_for(read_checkpoint(a.weights), a.weights)
    else:
        if a.width % 64:
            raise SystemExit("--width must be a multiple of 64 (heads of 64 channels)")
        model = VisionTransformer(336, 14, a.width, a.layers, a.width // 64, a.output_dim)
        randomise(model, a.random_weights)
    export(model, a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
