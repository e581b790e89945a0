"""Objectives learn their targets on a synthetic delayed-noise batch; augmentations behave."""
import pytest
import torch

from tded_train.augment import ALL_AUGS, AugConfig, augment_pair
from tded_train.model import EncoderConfig, StreamEncoder, small_layers
from tded_train.objectives import affinity, compute_loss, monoclr_views

torch.set_num_threads(2)
N = 1216


def delayed_noise(B, k, g, snr_db=20.0):
    """Right = left delayed by k samples (+ independent noise at snr_db per channel)."""
    s = torch.randn(B, N + abs(k), generator=g) * 0.1
    if k >= 0:
        L, R = s[:, k:k + N], s[:, :N]  # R[n] = L[n - k]
    else:
        L, R = s[:, :N], s[:, -k:-k + N]
    sig = 0.1 * 10 ** (-snr_db / 20)
    return (L + sig * torch.randn(L.shape, generator=g),
            R + sig * torch.randn(R.shape, generator=g))


def target_stats(model, a, b, offset_w):
    """Mean softmax probability and argmax accuracy of A(a, b) at column i + offset_w[b]."""
    with torch.no_grad():
        ea, eb = model.window_embeddings(torch.cat([a, b]), stride=4).chunk(2)
        A = affinity(ea, eb, model.cfg.tau)
    B, W, _ = A.shape
    i = torch.arange(W)[None, :]
    t = i + offset_w[:, None]
    ok = (t >= 0) & (t < W)
    P = torch.softmax(A, -1)
    p = P.gather(2, t.clamp(0, W - 1)[..., None])[..., 0][ok]
    acc = (A.argmax(-1) == t)[ok].float()
    return p.mean().item(), acc.mean().item()


def train_small(objective, k, steps, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = StreamEncoder(EncoderConfig(layers=small_layers()))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    aug = AugConfig.none()
    losses = []
    for _ in range(steps):
        L, R = delayed_noise(8, k, g)
        loss = compute_loss(model, L, R, objective, aug, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses, g


@pytest.mark.parametrize("objective,k", [("stereocrw", 8), ("stereocrw", -12), ("zeronce", 0)])
def test_stereo_objectives_learn_the_offset(objective, k):
    gt = torch.Generator().manual_seed(99)
    L, R = delayed_noise(8, k, gt)
    off = torch.full((8,), k // 4)
    model0 = StreamEncoder(EncoderConfig(layers=small_layers()))
    p0, _ = target_stats(model0, L, R, off)
    model, losses, _ = train_small(objective, k, 150)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    p1, acc1 = target_stats(model, L, R, off)
    assert last < 0.5 * first, (first, last)
    assert p0 < 0.2  # untrained: affinities nearly flat
    assert p1 > 0.6 and acc1 > 0.9, (p1, acc1)


def test_monoclr_learns_the_shift():
    model, losses, _ = train_small("monoclr", 0, 150)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
    g = torch.Generator().manual_seed(7)
    L, R = delayed_noise(8, 0, g)
    a, b, sw = monoclr_views(L, R, AugConfig.none(), g)
    p1, acc1 = target_stats(model, a, b, sw)
    model0 = StreamEncoder(EncoderConfig(layers=small_layers()))
    p0, _ = target_stats(model0, a, b, sw)
    assert p0 < 0.2
    assert p1 > 0.6 and acc1 > 0.9, (p1, acc1)


@pytest.mark.parametrize("name", ALL_AUGS)
def test_each_augmentation_shapes_and_clean_node(name):
    g = torch.Generator().manual_seed(3)
    L, R = delayed_noise(16, 4, g)
    L0, R0 = L.clone(), R.clone()
    cfg = AugConfig.only(name, p_swap=0.5, p_mix=1.0, p_reverb=1.0, p_noise=1.0)
    La, Ra, Lc = augment_pair(L, R, cfg, torch.Generator().manual_seed(5))
    assert La.shape == L.shape and Ra.shape == R.shape and Lc.shape == L.shape
    assert torch.equal(L, L0) and torch.equal(R, R0)  # inputs not modified in place
    # the clean return node is exactly a clean input channel (the left one, after any swap)
    for b in range(16):
        assert torch.equal(Lc[b], L0[b]) or (name == "swap" and torch.equal(Lc[b], R0[b]))
    if name == "swap":
        swapped = torch.tensor([torch.equal(Lc[b], R0[b]) for b in range(16)])
        assert 0 < swapped.sum() < 16
        for b in range(16):  # a swap exchanges the channels and nothing else
            assert torch.equal(La[b], Lc[b])
            assert torch.equal(Ra[b], L0[b] if swapped[b] else R0[b])
    else:
        assert not torch.allclose(La, Lc)  # the augmented copy really changed
        assert La.abs().max() < 10 and torch.isfinite(La).all() and torch.isfinite(Ra).all()
    if name == "gain":
        ratio = La / Lc
        assert ((ratio >= 0.5 - 1e-6) & (ratio < 1.5 + 1e-6)).all()


def test_no_augmentation_is_identity():
    g = torch.Generator().manual_seed(3)
    L, R = delayed_noise(4, 4, g)
    La, Ra, Lc = augment_pair(L, R, AugConfig.none(), g)
    assert torch.equal(La, L) and torch.equal(Ra, R) and torch.equal(Lc, L)
