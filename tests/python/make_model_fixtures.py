#!/usr/bin/python3
"""Writes random-weight SiT and VAE checkpoints, inputs and reference outputs for the
C++ model tests (tests/test_models.cpp). CI runs it at test time (ctest fixture
`model_fixtures`); it skips work when OUT already holds the files of this script's
version.

usage: /usr/bin/python3 tests/python/make_model_fixtures.py OUT_DIR
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference as dit  # noqa: E402
import repa_reference as repa  # noqa: E402
import model_reference as ref  # noqa: E402


def stamp_of_sources():
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("make_model_fixtures.py", "model_reference.py", "dit_reference.py",
                 "repa_reference.py"):
        with open(os.path.join(here, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def save(out, name, array):
    np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(array))


def sit_case(out, tag, sd, heads, patch, learn_sigma, sizes, seed):
    """Inputs at each latent size and the reference outputs."""
    g = torch.Generator().manual_seed(seed)
    for size in sizes:
        x = torch.randn(3, 4, size, size, generator=g)
        t = torch.tensor([0.0, 0.37, 1.0])
        y = torch.tensor([5, 999, 1000])  # the last is the null class
        with torch.no_grad():
            o = ref.sit_forward(sd, x, t, y, heads, patch, learn_sigma)
        save(out, "%s_x%d" % (tag, size), x.numpy())
        save(out, "%s_t%d" % (tag, size), t.numpy())
        save(out, "%s_y%d" % (tag, size), y.numpy().astype(np.int64))
        save(out, "%s_out%d" % (tag, size), o.numpy())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    stamp_path = os.path.join(a.out, "stamp.txt")
    stamp = stamp_of_sources()
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        print("model fixtures up to date in", a.out)
        return
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))

    # SiT-S/2 at latent 32 (learn_sigma), saved three ways.
    s2 = ref.random_sit("S", 2, seed=1)
    torch.save(s2, os.path.join(a.out, "sit_s2_plain.pt"))
    other = {k: (v + 1.0).half() for k, v in s2.items()}  # "model": must not be picked
    torch.save({"model": other, "ema": s2, "opt": {"state": {}, "param_groups": [{"lr": 1e-4}]},
                "args": argparse.Namespace(model="SiT-S/2", image_size=256, global_seed=0)},
               os.path.join(a.out, "sit_s2_train.pt"))
    ref.save_safetensors(os.path.join(a.out, "sit_s2.safetensors"), s2)
    sit_case(a.out, "s2", s2, heads=6, patch=2, learn_sigma=True, sizes=[32, 16], seed=2)

    # SiT-B/4 without learn_sigma, stored in float16: the reference uses the rounded weights.
    b4 = {k: v.half().float() for k, v in ref.random_sit("B", 4, seed=3, learn_sigma=False).items()}
    ref.save_safetensors(os.path.join(a.out, "sit_b4_fp16.safetensors"), b4, dtype=torch.float16)
    sit_case(a.out, "b4", b4, heads=12, patch=4, learn_sigma=False, sizes=[32, 64], seed=4)

    # Broken files for the loading errors.
    bad = dict(s2)
    del bad["blocks.3.mlp.fc1.bias"]
    bad["blocks.0.extra.weight"] = torch.zeros(2)
    bad["final_layer.adaLN_modulation.1.bias"] = torch.zeros(7)
    torch.save(bad, os.path.join(a.out, "sit_s2_broken_keys.pt"))
    with open(os.path.join(a.out, "sit_s2.safetensors"), "rb") as f:
        head = f.read(1 << 20)
    with open(os.path.join(a.out, "sit_s2_truncated.safetensors"), "wb") as f:
        f.write(head)
    with open(os.path.join(a.out, "sit_s2_plain.pt"), "rb") as f:
        head = f.read(1 << 20)
    with open(os.path.join(a.out, "sit_s2_truncated.pt"), "wb") as f:
        f.write(head)
    with open(os.path.join(a.out, "not_a_checkpoint.pt"), "w") as f:
        f.write("this is a text file, not a checkpoint\n")

    # Tiny VAE (two up blocks: x2 upsampling) in the diffusers layout, both file kinds.
    cfg = {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3,
           "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
           "block_out_channels": [32, 64], "layers_per_block": 1, "act_fn": "silu",
           "latent_channels": 4, "norm_num_groups": 8, "sample_size": 32, "scaling_factor": 0.18215}
    for kind, old in (("vae_new", False), ("vae_old", True)):
        d = os.path.join(a.out, kind)
        os.makedirs(d, exist_ok=True)
        sd = ref.random_vae(cfg, seed=5, old_attention_names=old)
        sd["encoder.conv_in.weight"] = torch.zeros(32, 3, 3, 3)  # encoder keys are ignored
        if old:
            torch.save(sd, os.path.join(d, "diffusion_pytorch_model.bin"))
        else:
            ref.save_safetensors(os.path.join(d, "diffusion_pytorch_model.safetensors"), sd)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        g = torch.Generator().manual_seed(6)
        for h, w in ((8, 8), (6, 10)):
            z = torch.randn(2, 4, h, w, generator=g) * 0.18215 * 3
            with torch.no_grad():
                img = ref.vae_decode(sd, cfg, z)
            save(a.out, "%s_z%dx%d" % (kind, h, w), z.numpy())
            save(a.out, "%s_img%dx%d" % (kind, h, w), img.numpy())
            save(a.out, "%s_u8_%dx%d" % (kind, h, w), ref.quantize(img))

    # DiT-S/2 (latent 4: 4 tokens, kept small for the 250-step runs; learn_sigma) sampled with DDPM / DDIM from fixed noise and labels,
    # decoded with the tiny VAE: the C++ sampler must give the same latents and images.
    torch.set_num_threads(1)  # tiny matmuls: thread start-up costs 5x the work here
    d2 = ref.random_sit("S", 2, seed=7, input_size=4)
    torch.save(d2, os.path.join(a.out, "dit_s2.pt"))
    vae_sd = ref.random_vae(cfg, seed=5)

    def net(x, t, y):
        return ref.sit_forward(d2, x, t, y, heads=6, patch=2, learn_sigma=False)  # all 8 channels

    g = torch.Generator().manual_seed(8)
    x_T = torch.randn(2, 4, 4, 4, generator=g)
    labels = torch.tensor([3, 717])
    save(a.out, "dit_xT", x_T.numpy())
    save(a.out, "dit_y", labels.numpy().astype(np.int64))
    cases = [("ddpm250_cfg3", "DDPM", "250", 1.5, "3", 0.0),
             ("ddpm250_cfgall", "DDPM", "250", 1.5, "all", 0.0),
             ("ddim50_eta0", "DDIM", "ddim50", 1.5, "3", 0.0),
             ("ddim50_eta1", "DDIM", "ddim50", 1.0, "3", 1.0)]
    for tag, family, respacing, scale, channels, eta in cases:
        diffusion = dit.Diffusion(respacing)
        noise = torch.randn(diffusion.num_steps(), 2, 4, 4, 4, generator=g)
        with torch.no_grad():
            z = dit.sample(net, diffusion, family, x_T, labels, noise, cfg=scale,
                           channels=channels, eta=eta)
            img = ref.vae_decode(vae_sd, cfg, z)
        save(a.out, "dit_%s_noise" % tag, noise.numpy())
        save(a.out, "dit_%s_latent" % tag, z.numpy())
        save(a.out, "dit_%s_pixels" % tag, (127.5 * img + 128.0).permute(0, 2, 3, 1).numpy())
        save(a.out, "dit_%s_u8" % tag, ref.quantize(img))

    # REPA (SiT-S/2 layout at latent 4, no learn_sigma, qk_norm, projection heads): its
    # samplers in tau time, float64 state, all-channel guidance on the interval tau <= 0.7.
    r2 = ref.random_sit("S", 2, seed=9, input_size=4, learn_sigma=False)
    g = torch.Generator().manual_seed(10)
    for i in range(12):
        for n in ("q_norm", "k_norm"):
            r2["blocks.%d.attn.%s.weight" % (i, n)] = 1.0 + 0.1 * torch.randn(64, generator=g)
            r2["blocks.%d.attn.%s.bias" % (i, n)] = 0.1 * torch.randn(64, generator=g)
    heads = dict(r2)
    for k, shape in (("projectors.0.0.weight", (16, 384)), ("projectors.0.0.bias", (16,)),
                     ("projectors.0.2.weight", (16, 16)), ("projectors.0.2.bias", (16,)),
                     ("projectors.0.4.weight", (8, 16)), ("projectors.0.4.bias", (8,))):
        heads[k] = torch.randn(shape, generator=g)
    torch.save(heads, os.path.join(a.out, "repa_s2.pt"))  # as the released last.pt
    legacy = {}
    for k, v in heads.items():  # encoder_depth 8: blocks 8..11 stored as decoder_blocks.0..3
        parts = k.split(".")
        if parts[0] == "blocks" and int(parts[1]) >= 8:
            k = ".".join(["decoder_blocks", str(int(parts[1]) - 8)] + parts[2:])
        legacy[k] = v
    torch.save({"ema": legacy, "args": argparse.Namespace(model="SiT-S/2", encoder_depth=8)},
               os.path.join(a.out, "repa_s2_legacy.pt"))

    def repa_net(x, t, y):
        return ref.sit_forward(r2, x, t, y, heads=6, patch=2, learn_sigma=False)

    z = torch.randn(2, 4, 4, 4, generator=g)
    save(a.out, "repa_z", z.numpy())
    save(a.out, "repa_y", labels.numpy().astype(np.int64))
    noise = torch.randn(19, 2, 4, 4, 4, generator=g, dtype=torch.float64)
    save(a.out, "repa_sde_noise", noise.numpy())
    with torch.no_grad():
        cases = {"ode_heun": repa.euler_sampler(repa_net, z, labels, 10, cfg=1.8, high=0.7, heun=True),
                 "ode_euler": repa.euler_sampler(repa_net, z, labels, 10, cfg=1.5),
                 "sde": repa.euler_maruyama_sampler(repa_net, z, labels, 20, noise, cfg=1.8, high=0.7)}
        for tag, (x, guided) in cases.items():
            img = ref.vae_decode(vae_sd, cfg, x.float())
            save(a.out, "repa_%s_latent" % tag, x.numpy())
            save(a.out, "repa_%s_guided" % tag, np.array([guided], dtype=np.int64))
            save(a.out, "repa_%s_pixels" % tag, (255.0 * ((img + 1) / 2)).permute(0, 2, 3, 1).numpy())
            save(a.out, "repa_%s_u8" % tag, repa.quantize_repa(img))

    # LightningDiT-B/1 in the released layout (training checkpoint: its ema entry, float16
    # storage to keep the file at 254 MB; the reference uses the rounded weights) and a
    # two-block qk-norm variant at grid 8 for the sampler: Euler on the shifted grid with
    # the 3-of-32-channel guidance from t >= start.
    lb = {k: v.half() for k, v in ref.random_lightningdit("B", seed=11).items()}
    torch.save({"ema": lb, "config": {"model": {"model_type": "LightningDiT-B/1"}}},
               os.path.join(a.out, "lightningdit_b1.pt"))
    lb = {k: v.float() for k, v in lb.items()}
    g = torch.Generator().manual_seed(12)
    lx = torch.randn(2, 32, 16, 16, generator=g)
    lt = torch.tensor([0.3, 0.85])
    ly = torch.tensor([5, 1000])
    with torch.no_grad():
        save(a.out, "lightningdit_b1_out", ref.lightningdit_forward(lb, lx, lt, ly, heads=12).numpy())
    save(a.out, "lightningdit_x", lx.numpy())
    save(a.out, "lightningdit_t", lt.numpy())
    save(a.out, "lightningdit_y", ly.numpy().astype(np.int64))

    small = ref.random_lightningdit("B", seed=13, qk_norm=True, grid=8, depth=2)
    torch.save(small, os.path.join(a.out, "lightningdit_qk2.pt"))

    def ldit_net(x, t, y):
        return ref.lightningdit_forward(small, x, t, y, heads=12)

    z = torch.randn(2, 32, 8, 8, generator=g)
    labels2 = torch.tensor([17, 923])
    save(a.out, "lightningdit_z", z.numpy())
    save(a.out, "lightningdit_labels", labels2.numpy().astype(np.int64))
    # LightningDiT inference.py: t = linspace(0, 1, N) float32, shifted in float32; Euler;
    # forward_with_cfg: the doubled batch, channels 0..2 guided, the guided value replaced by
    # the conditional one while t < cfg_interval_start
    steps, shift, scale, start = 20, 0.3, 6.7, 0.125
    u = torch.linspace(0, 1, steps, dtype=torch.float32)
    ts = (shift * u) / (1 + (shift - 1) * u)
    x = z.clone()
    with torch.no_grad():
        for i in range(steps - 1):
            tt = torch.full((4,), float(ts[i]))
            out = ldit_net(torch.cat([x, x]), tt, torch.cat([labels2, torch.full_like(labels2, 1000)]))
            c, un = out.chunk(2)
            guided = un[:, :3] + scale * (c[:, :3] - un[:, :3])
            if float(ts[i]) < start:
                guided = c[:, :3]
            v = torch.cat([guided, c[:, 3:]], dim=1)
            x = x + (ts[i + 1] - ts[i]) * v
    save(a.out, "lightningdit_sample", x.numpy())

    with open(stamp_path, "w") as f:
        f.write(stamp)
    print("wrote model fixtures to", a.out)


if __name__ == "__main__":
    main()
