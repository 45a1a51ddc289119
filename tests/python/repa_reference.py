"""An independent implementation of REPA's samplers (sihyun-yu/REPA samplers.py), written
from spec/protocols.md section 3 for the C++ tests: REPA time tau (1 noise, 0 data), the
network called with tau in float32 and predicting v_R = eps - x, state and grid in float64,
guidance on all channels with the interval guidance_low <= tau_i <= guidance_high decided
at each step's start (unguided steps call the conditional rows alone), the Heun corrector
sharing that decision and a plain Euler last step, and the Euler-Maruyama sampler with its
Mean-like last step. The SDE noise is given (one float64 array per stochastic step)."""

import torch


def _guided(net, x, tau, y, cfg, low, high):
    """f(x, tau): the network output (float64) guided on all channels where the interval
    holds; the conditional output alone elsewhere."""
    t = torch.full((x.shape[0],), tau, dtype=torch.float64).float()
    if cfg > 1.0 and low <= tau <= high:
        both = net(torch.cat([x, x]).float(), torch.cat([t, t]),
                   torch.cat([y, torch.full_like(y, 1000)])).double()
        c, u = both.chunk(2)
        return u + cfg * (c - u), True
    return net(x.float(), t, y).double(), False


def euler_sampler(net, z, y, steps, cfg=1.0, low=0.0, high=1.0, heun=False):
    """REPA's ODE sampler. Returns (x0 estimate, float64 state) and the guided count."""
    taus = torch.linspace(1, 0, steps + 1, dtype=torch.float64).tolist()
    x = z.double()
    guided = 0
    for i in range(steps):
        d, g = _guided(net, x, taus[i], y, cfg, low, high)
        guided += g
        x_e = x + (taus[i + 1] - taus[i]) * d
        if heun and i < steps - 1:
            # the corrector keeps step i's guidance decision
            if g:
                both = net(torch.cat([x_e, x_e]).float(),
                           torch.full((2 * x.shape[0],), taus[i + 1], dtype=torch.float64).float(),
                           torch.cat([y, torch.full_like(y, 1000)])).double()
                c, u = both.chunk(2)
                d2 = u + cfg * (c - u)
                guided += 1
            else:
                d2 = net(x_e.float(), torch.full((x.shape[0],), taus[i + 1], dtype=torch.float64).float(), y).double()
            x = x + (taus[i + 1] - taus[i]) * (d + d2) / 2
        else:
            x = x_e
    return x, guided


def euler_maruyama_sampler(net, z, y, steps, noise, cfg=1.0, low=0.0, high=1.0):
    """REPA's SDE sampler: tau = linspace(1, 0.04, steps) then 0; diffusion 2 tau; the last
    step from 0.04 to 0 without noise. noise: (steps - 1, B, ...) float64."""
    taus = torch.linspace(1, 0.04, steps, dtype=torch.float64).tolist() + [0.0]
    x = z.double()
    guided = 0

    def drift(x_in, tau):
        v, g = _guided(net, x_in, tau, y, cfg, low, high)
        s = ((tau - 1) * v - x_in) / tau  # score from v_R (linear path)
        return v - (2 * tau / 2) * s, g  # guiding d equals guiding v (d affine in v)

    for i in range(steps - 1):
        dt = taus[i + 1] - taus[i]
        eps = noise[i].double()  # drawn before the network call
        d, g = drift(x, taus[i])
        guided += g
        x = x + d * dt + (2 * taus[i]) ** 0.5 * abs(dt) ** 0.5 * eps
    d, g = drift(x, taus[-2])
    guided += g
    x = x + d * (0.0 - taus[-2])
    return x, guided


def quantize_repa(images):
    """(B, 3, H, W) -> uint8 (B, H, W, 3) as REPA generate.py: 255 * ((x + 1) / 2)."""
    return torch.clamp(255.0 * ((images + 1) / 2), 0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
