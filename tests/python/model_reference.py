"""Independent Python references of the SiT forward pass and the Stable Diffusion VAE
decoder, written from spec/sit_model.md and the diffusers layer layout with plain
torch.nn.functional calls (no model classes), to check the C++ modules against.
Runs on Debian's python3-torch (/usr/bin/python3)."""

import math

import numpy as np
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- SiT

SIT_SIZES = {"XL": (28, 1152, 16), "L": (24, 1024, 16), "B": (12, 768, 12), "S": (12, 384, 6)}


def sit_shapes(size, patch, input_size=32, num_classes=1000, learn_sigma=True, in_ch=4):
    """Checkpoint key -> shape, built from the architecture description."""
    depth, d, _ = SIT_SIZES[size]
    out_ch = 2 * in_ch if learn_sigma else in_ch
    t = (input_size // patch) ** 2
    shapes = {
        "pos_embed": (1, t, d),
        "x_embedder.proj.weight": (d, in_ch, patch, patch),
        "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, 256),
        "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d),
        "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (num_classes + 1, d),
    }
    for i in range(depth):
        p = "blocks.%d." % i
        shapes.update({
            p + "attn.qkv.weight": (3 * d, d), p + "attn.qkv.bias": (3 * d,),
            p + "attn.proj.weight": (d, d), p + "attn.proj.bias": (d,),
            p + "mlp.fc1.weight": (4 * d, d), p + "mlp.fc1.bias": (4 * d,),
            p + "mlp.fc2.weight": (d, 4 * d), p + "mlp.fc2.bias": (d,),
            p + "adaLN_modulation.1.weight": (6 * d, d), p + "adaLN_modulation.1.bias": (6 * d,),
        })
    shapes.update({
        "final_layer.linear.weight": (patch * patch * out_ch, d),
        "final_layer.linear.bias": (patch * patch * out_ch,),
        "final_layer.adaLN_modulation.1.weight": (2 * d, d),
        "final_layer.adaLN_modulation.1.bias": (2 * d,),
    })
    return shapes


def pos_embed_table(d, grid):
    """(1, grid*grid, d) float32; first half of the dims encodes the column j."""
    q = d // 4
    omega = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    out = np.zeros((grid, grid, d), dtype=np.float64)
    for i in range(grid):
        for j in range(grid):
            out[i, j, 0:q] = np.sin(j * omega)
            out[i, j, q:2 * q] = np.cos(j * omega)
            out[i, j, 2 * q:3 * q] = np.sin(i * omega)
            out[i, j, 3 * q:] = np.cos(i * omega)
    return torch.from_numpy(out.reshape(1, grid * grid, d).astype(np.float32))


def random_sit(size, patch, seed, input_size=32, num_classes=1000, learn_sigma=True):
    """Random weights with the scale of a trained network (adaLN not zeroed, so every
    path of the forward pass matters)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in sit_shapes(size, patch, input_size, num_classes, learn_sigma).items():
        if k == "pos_embed":
            sd[k] = pos_embed_table(shape[2], int(math.isqrt(shape[1])))
            continue
        fan_in = shape[1] if len(shape) == 2 else (int(np.prod(shape[1:])) if len(shape) > 1 else 1)
        std = 1.0 / math.sqrt(fan_in) if len(shape) > 1 else 0.02
        if k.startswith("y_embedder"):
            std = 1.0
        sd[k] = torch.randn(shape, generator=g) * std
    return sd


def sit_forward(sd, x, t, y, heads, patch, learn_sigma):
    d = sd["x_embedder.proj.weight"].shape[0]
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    tokens = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=patch)
    tokens = tokens.reshape(b, d, gh * gw).permute(0, 2, 1)
    pos = sd["pos_embed"]
    if pos.shape[1] != gh * gw:
        pos = pos_embed_table(d, gh)
    z = tokens + pos

    k = torch.arange(128, dtype=torch.float32)
    freqs = torch.exp(-math.log(10000) * k / 128)
    arg = t.float()[:, None] * freqs[None, :]
    temb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)
    temb = F.linear(temb, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])
    temb = F.linear(F.silu(temb), sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    cond = F.silu(temb + sd["y_embedder.embedding_table.weight"][y])

    def ln(v):
        return F.layer_norm(v, (d,), eps=1e-6)

    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    hd = d // heads
    for i in range(depth):
        p = "blocks.%d." % i
        m = F.linear(cond, sd[p + "adaLN_modulation.1.weight"], sd[p + "adaLN_modulation.1.bias"])
        sh1, sc1, g1, sh2, sc2, g2 = [m[:, j * d:(j + 1) * d, None].permute(0, 2, 1) for j in range(6)]
        u = ln(z) * (1 + sc1) + sh1
        qkv = F.linear(u, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, kk, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        qk_norm = p + "attn.q_norm.weight" in sd  # REPA's qk_norm: LayerNorm(head_dim, 1e-5)
        outs = []
        for head in range(heads):  # one head at a time: an independent formulation
            sl = slice(head * hd, (head + 1) * hd)
            qh, kh = q[..., sl], kk[..., sl]
            if qk_norm:
                qh = F.layer_norm(qh, (hd,), sd[p + "attn.q_norm.weight"], sd[p + "attn.q_norm.bias"], eps=1e-5)
                kh = F.layer_norm(kh, (hd,), sd[p + "attn.k_norm.weight"], sd[p + "attn.k_norm.bias"], eps=1e-5)
            att = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(hd), dim=-1)
            outs.append(att @ v[..., sl])
        a = F.linear(torch.cat(outs, dim=-1), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        z = z + g1 * a
        u = ln(z) * (1 + sc2) + sh2
        u = F.gelu(F.linear(u, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]), approximate="tanh")
        z = z + g2 * F.linear(u, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])

    m = F.linear(cond, sd["final_layer.adaLN_modulation.1.weight"], sd["final_layer.adaLN_modulation.1.bias"])
    shift, scale = m[:, None, :d], m[:, None, d:]
    z = F.linear(ln(z) * (1 + scale) + shift, sd["final_layer.linear.weight"], sd["final_layer.linear.bias"])
    co = z.shape[-1] // (patch * patch)
    out = torch.zeros(b, co, h, w)
    for pi in range(patch):
        for pj in range(patch):
            for ch in range(co):
                feat = (pi * patch + pj) * co + ch
                out[:, ch, pi::patch, pj::patch] = z[:, :, feat].reshape(b, gh, gw)
    return out[:, :c] if learn_sigma else out


# ---------------------------------------------------------------- VAE decoder

def vae_decoder_shapes(cfg, old_attention_names=False):
    blocks = cfg["block_out_channels"]
    lat = cfg["latent_channels"]
    top = blocks[-1]
    s = {"post_quant_conv.weight": (lat, lat, 1, 1), "post_quant_conv.bias": (lat,),
         "decoder.conv_in.weight": (top, lat, 3, 3), "decoder.conv_in.bias": (top,)}

    def resnet(prefix, cin, cout):
        s[prefix + "norm1.weight"] = (cin,)
        s[prefix + "norm1.bias"] = (cin,)
        s[prefix + "conv1.weight"] = (cout, cin, 3, 3)
        s[prefix + "conv1.bias"] = (cout,)
        s[prefix + "norm2.weight"] = (cout,)
        s[prefix + "norm2.bias"] = (cout,)
        s[prefix + "conv2.weight"] = (cout, cout, 3, 3)
        s[prefix + "conv2.bias"] = (cout,)
        if cin != cout:
            s[prefix + "conv_shortcut.weight"] = (cout, cin, 1, 1)
            s[prefix + "conv_shortcut.bias"] = (cout,)

    resnet("decoder.mid_block.resnets.0.", top, top)
    a = "decoder.mid_block.attentions.0."
    s[a + "group_norm.weight"] = (top,)
    s[a + "group_norm.bias"] = (top,)
    names = ["query", "key", "value", "proj_attn"] if old_attention_names else ["to_q", "to_k", "to_v", "to_out.0"]
    for n in names:
        s[a + n + ".weight"] = (top, top)
        s[a + n + ".bias"] = (top,)
    resnet("decoder.mid_block.resnets.1.", top, top)
    rev = list(reversed(blocks))
    prev = rev[0]
    for i, cout in enumerate(rev):
        for j in range(cfg["layers_per_block"] + 1):
            resnet("decoder.up_blocks.%d.resnets.%d." % (i, j), prev if j == 0 else cout, cout)
        if i < len(rev) - 1:
            s["decoder.up_blocks.%d.upsamplers.0.conv.weight" % i] = (cout, cout, 3, 3)
            s["decoder.up_blocks.%d.upsamplers.0.conv.bias" % i] = (cout,)
        prev = cout
    s["decoder.conv_norm_out.weight"] = (blocks[0],)
    s["decoder.conv_norm_out.bias"] = (blocks[0],)
    s["decoder.conv_out.weight"] = (cfg["out_channels"], blocks[0], 3, 3)
    s["decoder.conv_out.bias"] = (cfg["out_channels"],)
    return s


def random_vae(cfg, seed, old_attention_names=False):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in vae_decoder_shapes(cfg, old_attention_names).items():
        if len(shape) == 1:
            base = 1.0 if "norm" in k and k.endswith("weight") else 0.0
            sd[k] = base + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:]))
            sd[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return sd


def vae_decode(sd, cfg, latents):
    groups = cfg["norm_num_groups"]
    old = "decoder.mid_block.attentions.0.query.weight" in sd

    def gn(v, prefix):
        return F.group_norm(v, groups, sd[prefix + ".weight"], sd[prefix + ".bias"], eps=1e-6)

    def conv(v, prefix, pad):
        return F.conv2d(v, sd[prefix + ".weight"], sd[prefix + ".bias"], padding=pad)

    def resnet(v, prefix):
        h = conv(F.silu(gn(v, prefix + "norm1")), prefix + "conv1", 1)
        h = conv(F.silu(gn(h, prefix + "norm2")), prefix + "conv2", 1)
        if prefix + "conv_shortcut.weight" in sd:
            v = conv(v, prefix + "conv_shortcut", 0)
        return v + h

    def attention(v, prefix):
        b, c, hh, ww = v.shape
        u = gn(v, prefix + "group_norm").reshape(b, c, hh * ww).transpose(1, 2)
        n = ["query", "key", "value", "proj_attn"] if old else ["to_q", "to_k", "to_v", "to_out.0"]
        q, k, val = [F.linear(u, sd[prefix + x + ".weight"], sd[prefix + x + ".bias"]) for x in n[:3]]
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
        o = F.linear(att @ val, sd[prefix + n[3] + ".weight"], sd[prefix + n[3] + ".bias"])
        return v + o.transpose(1, 2).reshape(b, c, hh, ww)

    z = latents / cfg["scaling_factor"]
    z = conv(z, "post_quant_conv", 0)
    z = conv(z, "decoder.conv_in", 1)
    z = resnet(z, "decoder.mid_block.resnets.0.")
    z = attention(z, "decoder.mid_block.attentions.0.")
    z = resnet(z, "decoder.mid_block.resnets.1.")
    n_up = len(cfg["block_out_channels"])
    for i in range(n_up):
        for j in range(cfg["layers_per_block"] + 1):
            z = resnet(z, "decoder.up_blocks.%d.resnets.%d." % (i, j))
        if i < n_up - 1:
            z = z.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
            z = conv(z, "decoder.up_blocks.%d.upsamplers.0.conv" % i, 1)
    z = F.silu(gn(z, "decoder.conv_norm_out"))
    return conv(z, "decoder.conv_out", 1)


def quantize(images):
    """(B, 3, H, W) in about [-1, 1] -> uint8 (B, H, W, 3) as the reference sample_ddp.py."""
    return torch.clamp(127.5 * images + 128.0, 0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()


# ---------------------------------------------------------------- files

def save_safetensors(path, tensors, dtype=None):
    """Writes the safetensors layout (8-byte little-endian header size, JSON header,
    data) with our own code: Debian has no python3-safetensors."""
    import json
    import struct
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64"}
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k, v in tensors.items():
        v = v.to(dtype) if dtype is not None else v
        raw = v.contiguous().view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 \
            else v.contiguous().numpy().tobytes()
        header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- LightningDiT

LDIT_SIZES = {"XL": (28, 1152, 16), "L": (24, 1024, 16), "B": (12, 768, 12)}


def lightningdit_shapes(size, patch=1, grid=16, in_ch=32, num_classes=1000, qk_norm=False,
                        depth=None):
    """The released checkpoint's keys (protocols.md §4.2), feat_rope buffers included."""
    full_depth, d, heads = LDIT_SIZES[size]
    depth = full_depth if depth is None else depth
    hd, hidden = d // heads, int(2 / 3 * 4 * d)
    shapes = {
        "pos_embed": (1, grid * grid, d),
        "x_embedder.proj.weight": (d, in_ch, patch, patch), "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, 256), "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d), "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (num_classes + 1, d),
        "feat_rope.freqs_cos": (grid * grid, hd), "feat_rope.freqs_sin": (grid * grid, hd),
    }
    for i in range(depth):
        p = "blocks.%d." % i
        shapes.update({p + "norm1.weight": (d,), p + "attn.qkv.weight": (3 * d, d),
                       p + "attn.qkv.bias": (3 * d,), p + "attn.proj.weight": (d, d),
                       p + "attn.proj.bias": (d,), p + "norm2.weight": (d,),
                       p + "mlp.w12.weight": (2 * hidden, d), p + "mlp.w12.bias": (2 * hidden,),
                       p + "mlp.w3.weight": (d, hidden), p + "mlp.w3.bias": (d,),
                       p + "adaLN_modulation.1.weight": (6 * d, d),
                       p + "adaLN_modulation.1.bias": (6 * d,)})
        if qk_norm:
            shapes[p + "attn.q_norm.weight"] = (hd,)
            shapes[p + "attn.k_norm.weight"] = (hd,)
    shapes.update({"final_layer.norm_final.weight": (d,),
                   "final_layer.linear.weight": (patch * patch * in_ch, d),
                   "final_layer.linear.bias": (patch * patch * in_ch,),
                   "final_layer.adaLN_modulation.1.weight": (2 * d, d),
                   "final_layer.adaLN_modulation.1.bias": (2 * d,)})
    return shapes


def rope_angle(h, w, pair, hd):
    """Angle of adjacent pair `pair` of a head for the token at row h, column w: the first
    half of the pairs turn with the row, the second with the column, frequency
    10000^(-2m / (hd/2)) for the pair's index m within its half."""
    per_axis = hd // 4
    pos, m = (h, pair) if pair < per_axis else (w, pair - per_axis)
    return pos * 10000.0 ** (-2.0 * m / (hd // 2))


def random_lightningdit(size, seed, qk_norm=False, grid=16, depth=None):
    g = torch.Generator().manual_seed(seed)
    shapes = lightningdit_shapes(size, grid=grid, qk_norm=qk_norm, depth=depth)
    _, d, heads = LDIT_SIZES[size]
    hd = d // heads
    sd = {}
    for k, shape in shapes.items():
        if k == "pos_embed":
            sd[k] = pos_embed_table(d, grid)
        elif k.startswith("feat_rope"):
            ang = torch.tensor([[rope_angle(n // grid, n % grid, j // 2, hd) for j in range(hd)]
                                for n in range(grid * grid)], dtype=torch.float64)
            sd[k] = (torch.cos(ang) if k.endswith("cos") else torch.sin(ang)).float()
        elif k.endswith("norm1.weight") or k.endswith("norm2.weight") or "norm" in k:
            sd[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            sd[k] = 0.02 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:]))
            std = 1.0 if k.startswith("y_embedder") else 1.0 / math.sqrt(fan_in)
            sd[k] = torch.randn(shape, generator=g) * std
    return sd


def lightningdit_forward(sd, x, t, y, heads):
    """The forward pass of §4.2 written out: RMSNorm, per-head attention with RoPE applied
    pair by pair, SwiGLU."""
    d = sd["x_embedder.proj.weight"].shape[0]
    patch = sd["x_embedder.proj.weight"].shape[2]
    b, c, hgt, wid = x.shape
    gh, gw = hgt // patch, wid // patch
    z = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=patch)
    z = z.reshape(b, d, gh * gw).permute(0, 2, 1) + sd["pos_embed"]

    k = torch.arange(128, dtype=torch.float32)
    arg = t.float()[:, None] * torch.exp(-math.log(10000) * k / 128)[None, :]
    temb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)
    temb = F.linear(temb, sd["t_embedder.mlp.0.weight"], sd["t_embedder.mlp.0.bias"])
    temb = F.linear(F.silu(temb), sd["t_embedder.mlp.2.weight"], sd["t_embedder.mlp.2.bias"])
    cond = F.silu(temb + sd["y_embedder.embedding_table.weight"][y])

    def rms(v, weight):
        return (v.float() * torch.rsqrt(v.float().pow(2).mean(-1, keepdim=True) + 1e-6)) * weight

    hd = d // heads
    ang = torch.tensor([[rope_angle(n // gw, n % gw, j, hd) for j in range(hd // 2)]
                        for n in range(gh * gw)], dtype=torch.float64)
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()  # (T, hd/2), one per pair

    def rope(v):  # v: (B, T, hd)
        a, bb = v[..., 0::2], v[..., 1::2]
        out = torch.empty_like(v)
        out[..., 0::2] = a * cos - bb * sin
        out[..., 1::2] = bb * cos + a * sin
        return out

    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    for i in range(depth):
        p = "blocks.%d." % i
        m = F.linear(cond, sd[p + "adaLN_modulation.1.weight"], sd[p + "adaLN_modulation.1.bias"])
        sh1, sc1, g1, sh2, sc2, g2 = [m[:, j * d:(j + 1) * d][:, None, :] for j in range(6)]
        u = rms(z, sd[p + "norm1.weight"]) * (1 + sc1) + sh1
        qkv = F.linear(u, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, kk, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        outs = []
        for head in range(heads):
            sl = slice(head * hd, (head + 1) * hd)
            qh, kh = q[..., sl], kk[..., sl]
            if p + "attn.q_norm.weight" in sd:
                qh, kh = rms(qh, sd[p + "attn.q_norm.weight"]), rms(kh, sd[p + "attn.k_norm.weight"])
            qh, kh = rope(qh), rope(kh)
            att = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(hd), dim=-1)
            outs.append(att @ v[..., sl])
        z = z + g1 * F.linear(torch.cat(outs, dim=-1), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        u = rms(z, sd[p + "norm2.weight"]) * (1 + sc2) + sh2
        w12 = F.linear(u, sd[p + "mlp.w12.weight"], sd[p + "mlp.w12.bias"])
        hidden = w12.shape[-1] // 2
        z = z + g2 * F.linear(F.silu(w12[..., :hidden]) * w12[..., hidden:],
                              sd[p + "mlp.w3.weight"], sd[p + "mlp.w3.bias"])
    m = F.linear(cond, sd["final_layer.adaLN_modulation.1.weight"], sd["final_layer.adaLN_modulation.1.bias"])
    z = rms(z, sd["final_layer.norm_final.weight"]) * (1 + m[:, None, d:]) + m[:, None, :d]
    z = F.linear(z, sd["final_layer.linear.weight"], sd["final_layer.linear.bias"])
    co = z.shape[-1] // (patch * patch)
    out = torch.zeros(b, co, hgt, wid)
    for pi in range(patch):
        for pj in range(patch):
            for ch in range(co):
                out[:, ch, pi::patch, pj::patch] = z[:, :, (pi * patch + pj) * co + ch].reshape(b, gh, gw)
    return out
