#!/usr/bin/python3
"""Fixtures for the Inception feature tests (tests/test_inception.cpp), written at test time:

  canonical.pt       random-weight canonical extractor from tools/export_inception.py
  nvidia_like.pt     a random-weight TorchScript module with the structure of NVIDIA's
                     inception-2015-12-05.pt (submodule `layers` with children conv ...
                     mixed_6 (with child `conv`) ... pool2, Linear `output`, the same
                     forward signature), small enough to be quick
  images.npy         uint8 [6, 37, 53, 3] test images; images_299.npy [2, 299, 299, 3]
  resized.npy        float32 [6, 299, 299, 3]: TF1 legacy bilinear resize in NumPy
  canonical_{pool,spatial,logits}.npy, nvidia_{pool,spatial,logits}.npy: features of
                     images.npy through each module, preprocessed in NumPy

usage: /usr/bin/python3 tests/python/make_inception_fixtures.py OUT_DIR
"""

import hashlib
import os
import sys
from collections import OrderedDict
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import export_inception as ei  # noqa: E402


def tf1_resize(images, out_h, out_w):
    """TF1 legacy bilinear resize (align_corners False, no half-pixel centres), float32,
    written out index by index from the formula (independent of the C++ code)."""
    n, h, w, c = images.shape
    x = images.astype(np.float32)
    sy, sx = np.float32(h) / np.float32(out_h), np.float32(w) / np.float32(out_w)
    out = np.empty((n, out_h, out_w, c), np.float32)
    for i in range(out_h):
        fy = np.float32(i) * sy
        y0 = int(np.floor(fy))
        y1 = min(int(np.ceil(fy)), h - 1)
        ly = np.float32(fy - np.float32(y0))
        for j in range(out_w):
            fx = np.float32(j) * sx
            x0 = int(np.floor(fx))
            x1 = min(int(np.ceil(fx)), w - 1)
            lx = np.float32(fx - np.float32(x0))
            top = x[:, y0, x0] + (x[:, y0, x1] - x[:, y0, x0]) * lx
            bottom = x[:, y1, x0] + (x[:, y1, x1] - x[:, y1, x0]) * lx
            out[:, i, j] = top + (bottom - top) * ly
    return out


class ConvRelu(nn.Module):
    def __init__(self, cin, cout, k=1, s=1, p=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=p)

    def forward(self, x):
        return F.relu(self.conv(x))


class Mixed6(nn.Module):
    """Stands for Mixed_6d: its child `conv` is the 1x1 branch (192 channels)."""

    def __init__(self, cin):
        super().__init__()
        self.conv = ConvRelu(cin, 192)
        self.tower = ConvRelu(cin, 16, 3, 1, 1)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x)], 1)


class Centred(nn.Module):
    """A 1x1 convolution whose bias centres its output on calibration images (see
    condition()): pool features that differ from image to image by O(1) around zero."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.scale = nn.Parameter(torch.ones(1, cout, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x):
        # the ReLU before pooling makes the pool features a nonlinear function of the whole
        # map (full rank across images, not the 8 dimensions of the previous layer)
        return F.relu(self.conv(x)) * self.scale + self.shift


def calibration_images(n=128):
    """Images drawn as tests/python/check_evaluate.py draws its reference and sample sets
    (a random colour per image, mean 110 or 135, plus pixel noise; 20 x 28 pixels)."""
    rng = np.random.default_rng(99)
    shift = np.where(np.arange(n) % 2 == 0, 0.0, 25.0)[:, None, None, None]
    base = rng.normal(110 + shift, 40, size=(n, 1, 1, 3)) + rng.normal(0, 30, size=(n, 20, 28, 3))
    x = torch.from_numpy(np.clip(base, 0, 255).astype(np.float32)).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return (x - 128) / 128


def condition(m):
    """Well-conditioned features. With PyTorch's default initialisation, 17 random layers
    map every image to nearly the same pool vector (spread ~1e-8 of its norm), so any
    k-NN decision on those features is decided by rounding, and differs between BLAS
    kernels. He-normal weights keep the signal through the ReLU stack, and the last
    (linear) layer is scaled and centred on calibration images, so pool features spread
    O(1) around zero: squared distances are then comparable to squared norms, and fp32
    distance errors are ~1e-6 relative."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                nn.init.normal_(mod.bias, 0.0, 0.05)
        last = m.layers.mixed_10.conv
        x = calibration_images()
        for name, child in m.layers.named_children():
            if name == "mixed_10":
                break
            x = child(x)
        y = F.relu(last(x)).mean((2, 3))  # pool features before the affine map
        scale = 1 / y.std(0).clamp_min(1e-6)
        m.layers.mixed_10.scale.copy_(scale[None, :, None, None])
        m.layers.mixed_10.shift.copy_((-(y * scale).mean(0))[None, :, None, None])


class NvidiaLike(nn.Module):
    def __init__(self):
        super().__init__()
        c = 8
        self.layers = nn.Sequential(OrderedDict([
            ("conv", ConvRelu(3, c, 3, 2)), ("conv_1", ConvRelu(c, c, 3)), ("conv_2", ConvRelu(c, c, 3, 1, 1)),
            ("pool0", nn.MaxPool2d(3, 2)), ("conv_3", ConvRelu(c, c)), ("conv_4", ConvRelu(c, c, 3)),
            ("pool1", nn.MaxPool2d(3, 2)), ("mixed", ConvRelu(c, c, 3, 1, 1)), ("mixed_1", ConvRelu(c, c)),
            ("mixed_2", ConvRelu(c, c)), ("mixed_3", ConvRelu(c, c, 3, 2)), ("mixed_4", ConvRelu(c, c)),
            ("mixed_5", ConvRelu(c, c)), ("mixed_6", Mixed6(c)), ("mixed_7", ConvRelu(208, c)),
            ("mixed_8", ConvRelu(c, c, 3, 2)), ("mixed_9", ConvRelu(c, c)), ("mixed_10", Centred(c, 2048)),
            ("pool2", nn.AdaptiveAvgPool2d(1)),
        ]))
        self.output = nn.Linear(2048, 1008)
        condition(self)

    def forward(self, img, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False):
        x = img.to(torch.float32)
        if x.shape[2] != 299 or x.shape[3] != 299:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - 128) / 128
        features = self.layers(x).reshape(-1, 2048)
        if return_features:
            return features
        if no_output_bias:
            logits = F.linear(features, self.output.weight)
        else:
            logits = self.output(features)
        return F.softmax(logits, dim=1)


def nvidia_features(m, x) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    spatial = None
    for name, child in m.layers.named_children():
        if name == "mixed_6":
            spatial = child.conv(x)[:, :7].permute(0, 2, 3, 1).flatten(1)
        x = child(x)
    pool = x.flatten(1)
    return pool, spatial, pool @ m.output.weight.t()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    h = hashlib.sha256()
    for f in (__file__, ei.__file__):
        h.update(open(f, "rb").read())
    stamp = os.path.join(out, "stamp.txt")
    if os.path.exists(stamp) and open(stamp).read() == h.hexdigest():
        print("inception fixtures up to date in", out)
        return
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(6, 37, 53, 3), dtype=np.uint8)
    np.save(os.path.join(out, "images.npy"), images)
    np.save(os.path.join(out, "images_299.npy"), rng.integers(0, 256, size=(2, 299, 299, 3), dtype=np.uint8))
    resized = tf1_resize(images, 299, 299)
    np.save(os.path.join(out, "resized.npy"), resized)
    x = torch.from_numpy((resized - 128) / 128).permute(0, 3, 1, 2).contiguous()

    canonical = ei.FidInceptionV3().eval()
    ei.randomise(canonical, 0)
    torch.jit.script(canonical).save(os.path.join(out, "canonical.pt"))
    torch.manual_seed(1)
    nvidia = NvidiaLike().eval()
    torch.jit.script(nvidia).save(os.path.join(out, "nvidia_like.pt"))
    with torch.no_grad():
        for tag, feats in (("canonical", canonical(x)), ("nvidia", nvidia_features(nvidia, x))):
            for name, t in zip(("pool", "spatial", "logits"), feats):
                np.save(os.path.join(out, "%s_%s.npy" % (tag, name)), t.numpy().astype(np.float32))
    with open(stamp, "w") as f:
        f.write(h.hexdigest())
    print("wrote inception fixtures to", out)


if __name__ == "__main__":
    main()
