"""An independent implementation of DiT's discrete-time sampling, written from
spec/dit_diffusion.md for the C++ tests: float64 NumPy schedule arrays, coefficients cast
to float32 per step (the reference's _extract_into_tensor), float32 state arithmetic,
forward_with_cfg guidance. The per-step noise is given (one array per loop step), so the
C++ side can use exactly the same draws."""

import numpy as np
import torch


def linear_betas(T=1000):
    scale = 1000.0 / T
    return np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)


def space_timesteps(T, respacing):
    if respacing.startswith("ddim"):
        n = int(respacing[len("ddim"):])
        for i in range(1, T):
            if len(range(0, T, i)) == n:
                return set(range(0, T, i))
        raise ValueError(respacing)
    counts = [int(c) for c in respacing.split(",")]
    per, extra = divmod(T, len(counts))
    start, kept = 0, []
    for i, c in enumerate(counts):
        size = per + (1 if i < extra else 0)
        stride = 1 if c <= 1 else (size - 1) / (c - 1)
        cur = 0.0
        for _ in range(c):
            kept.append(start + round(cur))
            cur += stride
        start += size
    return set(kept)


class Diffusion:
    def __init__(self, respacing, T=1000):
        base = np.cumprod(1.0 - linear_betas(T))
        use = space_timesteps(T, respacing)
        betas, self.timestep_map, last = [], [], 1.0
        for k, ab in enumerate(base):
            if k in use:
                betas.append(1 - ab / last)
                last = ab
                self.timestep_map.append(k)
        b = np.array(betas, dtype=np.float64)
        ab = np.cumprod(1.0 - b)
        abp = np.append(1.0, ab[:-1])
        self.betas, self.abar, self.abar_prev = b, ab, abp
        self.sqrt_recip = np.sqrt(1.0 / ab)
        self.sqrt_recipm1 = np.sqrt(1.0 / ab - 1)
        pv = b * (1.0 - abp) / (1.0 - ab)
        self.log_var_clipped = np.log(np.append(pv[1], pv[1:]))
        self.coef1 = b * np.sqrt(abp) / (1.0 - ab)
        self.coef2 = (1.0 - abp) * np.sqrt(1.0 - b) / (1.0 - ab)

    def num_steps(self):
        return len(self.betas)


def f32(v):
    return torch.tensor(v, dtype=torch.float32)


def guided(net, x, t, y, scale, channels):
    """DiT's forward_with_cfg on the doubled batch [x; x] (the second half of the state is
    replaced by the first) with labels [y; null]."""
    half = x[: x.shape[0] // 2]
    out = net(torch.cat([half, half]), t, y)
    c = 3 if channels == "3" else x.shape[1]
    eps, rest = out[:, :c], out[:, c:]
    cond, uncond = torch.split(eps, len(eps) // 2, dim=0)
    g = uncond + scale * (cond - uncond)
    return torch.cat([torch.cat([g, g]), rest], dim=1)


def sample(net, diffusion, family, x_T, y, noise, cfg=1.0, channels="3", eta=0.0,
           null_class=1000):
    """family "DDPM" (learned-range variance, clip_denoised False) or "DDIM"; noise[s] is
    the draw of loop step s (shape of x_T). Returns the final x0 estimate (B, C, H, W)."""
    B, C = x_T.shape[0], x_T.shape[1]
    if cfg != 1.0:
        x = torch.cat([x_T, x_T])
        y = torch.cat([y, torch.full_like(y, null_class)])
    else:
        x = x_T
    n = diffusion.num_steps()
    for s in range(n):
        j = n - 1 - s
        t = torch.full((x.shape[0],), float(diffusion.timestep_map[j]))
        out = guided(net, x, t, y, cfg, channels) if cfg != 1.0 else net(x, t, y)
        eps, v = out[:, :C], out[:, C:]
        x0 = f32(diffusion.sqrt_recip[j]) * x - f32(diffusion.sqrt_recipm1[j]) * eps
        z = torch.cat([noise[s], noise[s]]) if cfg != 1.0 else noise[s]
        if family == "DDPM":
            min_log = f32(diffusion.log_var_clipped[j])
            max_log = f32(np.log(diffusion.betas[j]))
            frac = (v + 1) / 2
            log_var = frac * max_log + (1 - frac) * min_log
            mean = f32(diffusion.coef1[j]) * x0 + f32(diffusion.coef2[j]) * x
            x = mean + (1.0 if j != 0 else 0.0) * torch.exp(0.5 * log_var) * z
        else:
            e = (f32(diffusion.sqrt_recip[j]) * x - x0) / f32(diffusion.sqrt_recipm1[j])
            ab, abp = f32(diffusion.abar[j]), f32(diffusion.abar_prev[j])
            sigma = eta * torch.sqrt((1 - abp) / (1 - ab)) * torch.sqrt(1 - ab / abp)
            x = x0 * torch.sqrt(abp) + torch.sqrt(1 - abp - sigma ** 2) * e
            x = x + (1.0 if j != 0 else 0.0) * sigma * z
    return x[:B]
