#!/usr/bin/python3
"""Random-weight DINOv2-S/14 and small CLIP-layout exports (tools/export_dinov2.py,
tools/export_clip.py), images, their preprocessing as the reference tools do it, and the
exported modules' outputs, for tests/test_extractors.cpp. Written at test time (ctest
fixture `extractor_fixtures`).

Checked here, before anything is written: the modules agree with float64 forwards written
independently from metrics_modern.md (sections 1.4 and 2.1, functional code, not the
modules) to 1e-5 relative; the positional-embedding resampling reproduces the spec's
section-8 check 8 values with an explicit NumPy formula; the ViT-L/14 and ViT-L/14@336
state dicts have the spec's tensor and value counts.

  manifest.json, images_*.npy (uint8 N,H,W,3), *_input_*.npy (float32 N,3,S,S),
  *_features.npy (float32 N,D), dinov2.pt, clip.pt

usage: /usr/bin/python3 tests/python/make_extractor_fixtures.py OUT_DIR
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import export_clip  # noqa: E402
import export_dinov2  # noqa: E402

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def splitmix_gauss(seed, n):
    s = seed
    out = []
    mask = (1 << 64) - 1

    def draw():
        nonlocal s
        s = (s + 0x9E3779B97F4A7C15) & mask
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    for _ in range(n):
        t = 0.0
        for _ in range(12):
            t += (draw() >> 11) * 2.0 ** -53
        out.append(t - 6.0)
    return np.array(out)


def check_pos_embed_rule():
    """metrics_modern.md section 8, check 8: explicit bicubic (A = -0.75, clamped taps,
    source (o + 0.5) * 37 / 16.1 - 0.5) against the spec's values and torch."""
    grid = splitmix_gauss(11, 1369 * 2).reshape(37, 37, 2)
    A = -0.75

    def c1(x):
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def c2(x):
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    m = np.zeros((16, 37))
    for o in range(16):
        s = (o + 0.5) * 37 / 16.1 - 0.5
        f = math.floor(s)
        t = s - f
        for tap, w in zip((f - 1, f, f + 1, f + 2), (c2(t + 1), c1(t), c1(1 - t), c2(2 - t))):
            m[o, min(max(tap, 0), 36)] += w
    assert np.allclose(m[0, :3], [0.333954387447, 0.776928535066, -0.110882922513], atol=1e-11)
    out = np.einsum("ij,jkc,lk->ilc", m, grid, m)
    for (r, c), v in {(0, 0): (0.1807711315, -0.8108331921), (0, 1): (-0.1112074985, 0.1426871438),
                      (7, 9): (-1.1940517149, -0.6963122178),
                      (15, 15): (-1.6194944661, -0.2837854014)}.items():
        assert np.allclose(out[r, c], v, atol=1e-9), (r, c, out[r, c])
    assert np.allclose(out.sum((0, 1)), (-18.3309905715, -8.9583297432), atol=1e-8)
    t = torch.from_numpy(grid).float().permute(2, 0, 1)[None]
    got = F.interpolate(t, scale_factor=(16.1 / 37, 16.1 / 37), mode="bicubic", antialias=False)
    assert np.abs(got[0].permute(1, 2, 0).double().numpy() - out).max() < 1e-5


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def attention(x, w_qkv, b_qkv, w_out, b_out, heads):
    n, t, c = x.shape
    hd = c // heads
    qkv = x @ w_qkv.T + b_qkv
    q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(n, t, heads, hd).transpose(1, 2) for i in range(3))
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    return (a @ v).transpose(1, 2).reshape(n, t, c) @ w_out.T + b_out


def dinov2_float64(sd, heads, x):
    """metrics_modern.md 1.4 steps 1-5 in float64 from the state dict (pos embed resampled
    with the explicit rule)."""
    p = {k: v.double() for k, v in sd.items()}
    dim = p["cls_token"].shape[-1]
    h = F.conv2d(x.double(), p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=14)
    h = h.flatten(2).transpose(1, 2)
    A = -0.75
    m = torch.zeros(16, 37, dtype=torch.float64)
    for o in range(16):
        s = (o + 0.5) * 37 / 16.1 - 0.5
        f = math.floor(s)
        t = s - f
        ws = (((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A,
              ((A + 2) * t - (A + 3)) * t * t + 1,
              ((A + 2) * (1 - t) - (A + 3)) * (1 - t) ** 2 + 1,
              ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A)
        for tap, w in zip((f - 1, f, f + 1, f + 2), ws):
            m[o, min(max(tap, 0), 36)] += w
    grid = p["pos_embed"][0, 1:].reshape(37, 37, dim)
    pos = torch.einsum("ij,jkc,lk->ilc", m, grid, m).reshape(256, dim)
    pos = torch.cat([p["pos_embed"][0, :1], pos])
    h = torch.cat([p["cls_token"].expand(h.shape[0], 1, dim), h], dim=1) + pos
    depth = len({k.split(".")[1] for k in p if k.startswith("blocks.")})
    for i in range(depth):
        b = "blocks.%d." % i
        a = attention(layer_norm(h, p[b + "norm1.weight"], p[b + "norm1.bias"], 1e-6),
                      p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"], p[b + "attn.proj.weight"],
                      p[b + "attn.proj.bias"], heads)
        h = h + p[b + "ls1.gamma"] * a
        u = layer_norm(h, p[b + "norm2.weight"], p[b + "norm2.bias"], 1e-6) @ p[b + "mlp.fc1.weight"].T
        u = u + p[b + "mlp.fc1.bias"]
        u = 0.5 * u * (1 + torch.erf(u / math.sqrt(2)))
        h = h + p[b + "ls2.gamma"] * (u @ p[b + "mlp.fc2.weight"].T + p[b + "mlp.fc2.bias"])
    return layer_norm(h, p["norm.weight"], p["norm.bias"], 1e-6)[:, 0]


def clip_float64(sd, heads, x):
    """metrics_modern.md 2.1's tower in float64 from the state dict."""
    p = {k: v.double() for k, v in sd.items()}
    h = F.conv2d(x.double(), p["conv1.weight"], None, stride=14).flatten(2).transpose(1, 2)
    w = h.shape[-1]
    h = torch.cat([p["class_embedding"].expand(h.shape[0], 1, w), h], dim=1) + p["positional_embedding"]
    h = layer_norm(h, p["ln_pre.weight"], p["ln_pre.bias"], 1e-5)
    layers = len({k.split(".")[2] for k in p if k.startswith("transformer.resblocks.")})
    for i in range(layers):
        b = "transformer.resblocks.%d." % i
        h = h + attention(layer_norm(h, p[b + "ln_1.weight"], p[b + "ln_1.bias"], 1e-5),
                          p[b + "attn.in_proj_weight"], p[b + "attn.in_proj_bias"],
                          p[b + "attn.out_proj.weight"], p[b + "attn.out_proj.bias"], heads)
        u = layer_norm(h, p[b + "ln_2.weight"], p[b + "ln_2.bias"], 1e-5) @ p[b + "mlp.c_fc.weight"].T
        u = u + p[b + "mlp.c_fc.bias"]
        u = u * torch.sigmoid(1.702 * u)
        h = h + u @ p[b + "mlp.c_proj.weight"].T + p[b + "mlp.c_proj.bias"]
    return layer_norm(h[:, 0], p["ln_post.weight"], p["ln_post.bias"], 1e-5) @ p["proj"]


def normalise(x, stats):
    """ToTensor + Normalize: float32 /255, then (x - mean) / std in float32. x: uint8 or
    float32 NHWC (0..255) -> NCHW."""
    mean = np.array(stats[0], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(stats[1], dtype=np.float32).reshape(1, 3, 1, 1)
    t = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)
    return ((t - mean) / std).astype(np.float32)


def pil_resize(images, w, h):
    return np.stack([np.array(Image.fromarray(im).resize((w, h), Image.BICUBIC)) for im in images])


def centre_square(im):
    side = min(im.shape[0], im.shape[1])
    top, left = (im.shape[0] - side) // 2, (im.shape[1] - side) // 2
    return im[top:top + side, left:left + side]


def relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    check_pos_embed_rule()
    for model, tensors, values in ((export_dinov2.build("vitl14", device="meta"), 343, 304368640),
                                   (export_clip.VisionTransformer(device="meta"), 296, 304293888)):
        sd = model.state_dict()
        assert (len(sd), sum(v.numel() for v in sd.values())) == (tensors, values)

    rng = np.random.default_rng(5)
    # smooth images with some texture, uint8: 256 px (a downsample to 224) and 300 x 260
    # (centre crop to 260, then up to 336)
    def images(n, h, w):
        base = rng.normal(0, 1, (n, h, w, 3)).cumsum(1).cumsum(2)
        base = (base - base.min()) / (base.max() - base.min()) * 255
        return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)

    manifest = {}
    img_d = images(3, 256, 256)
    img_c = images(3, 260, 300)
    np.save(os.path.join(out, "images_256.npy"), img_d)
    np.save(os.path.join(out, "images_260x300.npy"), img_c)

    # DINOv2-S/14 with random weights
    dino = export_dinov2.build("vits14")
    export_dinov2.randomise(dino, 3)
    export_dinov2.export(dino, os.path.join(out, "dinov2.pt"))
    x_pil = normalise(pil_resize(img_d, 224, 224), IMAGENET)
    t = F.interpolate(torch.from_numpy(img_d).permute(0, 3, 1, 2).float(), size=(224, 224),
                      mode="bicubic", antialias=True)
    x_torch = normalise(t.permute(0, 2, 3, 1).numpy(), IMAGENET)
    # dgm-eval --clean_resize: each channel as a mode-F image, Pillow bicubic, clipped
    clean = np.stack([np.stack([np.clip(np.array(Image.fromarray(im[:, :, c].astype(np.float32), mode="F")
                                                 .resize((224, 224), Image.BICUBIC)), 0, 255)
                                for c in range(3)], axis=2) for im in img_d])
    x_clean = normalise(clean.astype(np.float32), IMAGENET)
    with torch.no_grad():
        f_pil = dino(torch.from_numpy(x_pil)).numpy()
        f_torch = dino(torch.from_numpy(x_torch)).numpy()
        ref = dinov2_float64(dino.state_dict(), 6, torch.from_numpy(x_pil)).numpy()
    assert relative(f_pil, ref) < 1e-5, relative(f_pil, ref)
    assert relative(f_pil, f_torch) > 1e-6  # the two resize modes differ
    for name, arr in (("dinov2_input_pil", x_pil), ("dinov2_input_torch", x_torch),
                      ("dinov2_input_pil_float", x_clean),
                      ("dinov2_features_pil", f_pil), ("dinov2_features_torch", f_torch)):
        np.save(os.path.join(out, name + ".npy"), arr)

    # a CLIP tower of ViT-L/14@336's layout, narrow and shallow
    clip = export_clip.VisionTransformer(336, 14, 128, 2, 2, 64)
    export_clip.randomise(clip, 4)
    export_clip.export(clip, os.path.join(out, "clip.pt"))
    x_clip = normalise(pil_resize([centre_square(im) for im in img_c], 336, 336), CLIP)
    with torch.no_grad():
        f_clip = clip(torch.from_numpy(x_clip)).numpy()
        ref = clip_float64(clip.state_dict(), 2, torch.from_numpy(x_clip)).numpy()
    assert relative(f_clip, ref) < 1e-5, relative(f_clip, ref)
    np.save(os.path.join(out, "clip_input.npy"), x_clip)
    np.save(os.path.join(out, "clip_features.npy"), f_clip)
    manifest = {"dinov2_width": int(f_pil.shape[1]), "clip_width": int(f_clip.shape[1])}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    print("wrote extractor fixtures to", out)


if __name__ == "__main__":
    main()
