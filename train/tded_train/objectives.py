"""Self-supervised objectives: StereoCRW, ZeroNCE, MonoCLR (see stereocrw-facts.md).

All take embeddings [B, W, D] of windows at stride ``stride`` (L2-normalised) and return a
scalar loss; ``affinity`` gives A = <e_a, e_b> / tau.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

OBJECTIVES = ("stereocrw", "zeronce", "monoclr")


def affinity(ea: torch.Tensor, eb: torch.Tensor, tau: float) -> torch.Tensor:
    return torch.bmm(ea, eb.transpose(1, 2)) / tau


def stereocrw_loss(eLa, eRa, eLc, tau: float) -> torch.Tensor:
    """Walk L_aug -> R_aug -> L_clean; CE of log(cycle + 1e-20) against the identity."""
    P1 = torch.softmax(affinity(eLa, eRa, tau), dim=-1)
    P2 = torch.softmax(affinity(eRa, eLc, tau), dim=-1)
    cyc = torch.bmm(P1, P2)  # [B, W, W]
    B, W, _ = cyc.shape
    target = torch.arange(W, device=cyc.device).expand(B, W)
    return F.nll_loss(torch.log(cyc + 1e-20).reshape(B * W, W), target.reshape(-1))


def zeronce_loss(eL, eR, tau: float) -> torch.Tensor:
    """InfoNCE on A(L, R) with the diagonal as positives (both directions), negatives = the other
    windows of the same clip."""
    A = affinity(eL, eR, tau)
    B, W, _ = A.shape
    target = torch.arange(W, device=A.device).expand(B, W).reshape(-1)
    return 0.5 * (F.cross_entropy(A.reshape(B * W, W), target)
                  + F.cross_entropy(A.transpose(1, 2).reshape(B * W, W), target))


def monoclr_loss(ea, eb, shift_windows: torch.Tensor, tau: float) -> torch.Tensor:
    """Instance discrimination of mono windows: window i of the anchor matches window
    i + shift_windows[b] of the shifted, gain-augmented copy; negatives are the other windows of
    the same clip.  Rows whose positive falls outside are ignored."""
    A = affinity(ea, eb, tau)
    B, W, _ = A.shape
    i = torch.arange(W, device=A.device)[None, :]
    tgt = i + shift_windows.to(A.device)[:, None]  # [B, W]
    ok = (tgt >= 0) & (tgt < W)
    tgt = tgt.clamp(0, W - 1)
    ce = F.cross_entropy(A.reshape(B * W, W), tgt.reshape(-1), reduction="none")
    ok = ok.reshape(-1).float()
    return (ce * ok).sum() / ok.sum().clamp_min(1.0)


MONO_SHIFT_MAX = 16


def compute_loss(model, L: torch.Tensor, R: torch.Tensor, objective: str, aug,
                 g: torch.Generator, stride: int = 4) -> torch.Tensor:
    """One training loss on a clean stereo batch L, R [B, N] (N = 1216 -> 49 windows)."""
    from .augment import add_noise, augment_pair, _uniform

    tau = model.cfg.tau
    if objective == "stereocrw":
        La, Ra, Lc = augment_pair(L, R, aug, g)
        eLa, eRa, eLc = model.window_embeddings(torch.cat([La, Ra, Lc]), stride=stride).chunk(3)
        return stereocrw_loss(eLa, eRa, eLc, tau)
    if objective == "zeronce":
        La, Ra, _ = augment_pair(L, R, aug, g)
        eL, eR = model.window_embeddings(torch.cat([La, Ra]), stride=stride).chunk(2)
        return zeronce_loss(eL, eR, tau)
    if objective == "monoclr":
        a, b, shift_w = monoclr_views(L, R, aug, g, stride)
        ea, eb = model.window_embeddings(torch.cat([a, b]), stride=stride).chunk(2)
        return monoclr_loss(ea, eb, shift_w, tau)
    raise ValueError(f"unknown objective {objective!r}; choose from {OBJECTIVES}")


def monoclr_views(L, R, aug, g, stride: int = 4):
    """Mono anchor m = (L+R)/2 and a copy shifted by delta in {-16, ..., 16} (a multiple of the
    window stride) with a random gain (and noise if enabled): b[n] = gain * m[n - delta].
    Returns (a, b, delta / stride)."""
    from .augment import add_noise, _uniform

    m = 0.5 * (L + R)
    B = m.shape[0]
    k = MONO_SHIFT_MAX // stride
    shift_w = torch.randint(-k, k + 1, (B,), generator=g)
    b = torch.stack([torch.roll(m[i], int(shift_w[i]) * stride) for i in range(B)])
    lo, hi = aug.gain_range if aug.gain else (0.5, 1.5)  # gain is intrinsic to MonoCLR
    b = (b * _uniform((B, 1), lo, hi, g)).clamp(-1, 1)
    if aug.noise:
        b = add_noise(b, aug, g, aug.p_noise)
    return m, b, shift_w
