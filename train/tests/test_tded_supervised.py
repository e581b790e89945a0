"""Supervised stage: RIR-bank labels, rendering sign, losses, span pooling, semi-supervised
training + bit-exact resume, and DistributedDataParallel on CPU (gloo, 2 processes)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from tded_train.model import EncoderConfig, StreamEncoder, small_layers
from tded_train.pools import Pool
from tded_train.rirbank import build_bank, near_eval_room
from tded_train.supervised import (SupConfig, SupSampler, all_window_embeddings, band_logits,
                                   example_length, soft_target, supervised_losses)
from tded_train.val import gcc_phat_votes

TRAIN = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def upsampled_gcc_phat_delay(a, b, up=64, max_lag=30):
    """Independent estimate: GCC-PHAT peak of b against a, interpolated by zero-padding the
    spectrum `up` times (positive = b later)."""
    n = 1
    while n < 2 * len(a):
        n *= 2
    A, B = np.fft.rfft(a, n), np.fft.rfft(b, n)
    G = B * np.conj(A)
    G /= np.abs(G) + 1e-12
    cc = np.fft.irfft(G, n * up)
    lags = np.r_[np.arange(0, max_lag * up + 1), np.arange(-max_lag * up, 0)]
    v = np.r_[cc[: max_lag * up + 1], cc[-max_lag * up:]]
    return lags[np.argmax(v)] / up


def test_rirbank_labels_match_cross_correlation_of_the_direct_path():
    bank = build_bank(n_rooms=4, positions=3, taps=1024, seed=5, max_order_cap=0, verbose=False)
    noise = np.random.default_rng(0).standard_normal(16000)
    errs = []
    for r in range(4):
        for k in range(3):
            hl, hr = bank["rirs"][r, k].astype(np.float64)
            yl, yr = fftconvolve(noise, hl)[:16000], fftconvolve(noise, hr)[:16000]
            errs.append(upsampled_gcc_phat_delay(yl, yr) - bank["delay"][r, k])
    assert np.abs(bank["delay"]).max() > 1.0  # non-trivial delays
    assert np.max(np.abs(errs)) <= 0.05, errs
    assert not any(near_eval_room(m[:3]) for m in bank["meta"])
    assert near_eval_room((7.1, 6.2, 2.9)) and near_eval_room((6.0, 7.0, 3.0))
    assert np.all((bank["meta"][:, 4] >= 0.05) & (bank["meta"][:, 4] <= 0.30))


def tiny_bank(order=2):
    return build_bank(n_rooms=3, positions=3, taps=512, seed=3, max_order_cap=order, verbose=False)


def tiny_pools(seed=0):
    rng = np.random.default_rng(seed)
    speech = Pool.from_arrays([0.3 * rng.standard_normal(8000).astype(np.float32) for _ in range(3)])
    music = Pool.from_arrays([0.3 * rng.standard_normal(6000).astype(np.float32)])
    noise = Pool.from_arrays([0.3 * rng.standard_normal(5000).astype(np.float32)])
    return speech, music, noise


def test_rendered_examples_carry_the_label_with_its_sign():
    """Clean renderings (SNR 80 dB, no distractor) through a direct-path bank: GCC-PHAT of the
    stereo example finds the label, swapped examples included (label negated)."""
    speech, music, noise = tiny_pools()
    cfg = SupConfig(K=4, p_mix=0.0, snr_range=(80.0, 80.0), noise_kinds=("white",))
    s = SupSampler(tiny_bank(order=0), [speech], [music], noise, cfg, seed=1)
    x, d = s.batch(12)
    assert x.shape == (12, 2, example_length(4)) and x.dtype == torch.float32
    v = gcc_phat_votes(x.numpy().astype(np.float64)).mean(1)
    assert np.abs(v - d.numpy()).max() <= 0.6
    assert (d < 0).any() and (d > 0).any()
    # every noise kind renders
    for kind in ("white", "pink", "diffuse", "recorded", "recorded-point"):
        s.cfg = SupConfig(K=4, noise_kinds=(kind,))
        s.kinds = [kind]
        y, _ = s.batch(2)
        assert torch.isfinite(y).all() and y.abs().max() <= 1


def test_direction_jumps_render_the_old_then_the_new_position():
    """p_jump = 1 through a direct-path bank: before the jump the stereo example carries the old
    position's delay, after it the new one's, which is the label; jumps off leave the random
    stream, hence every rendering, as it was."""
    speech, music, noise = tiny_pools()
    rate, n, age = 16000, 8000, 0.25
    cut = n - int(age * rate)
    base = dict(K=4, p_mix=0.0, snr_range=(80.0, 80.0), noise_kinds=("white",), p_swap=0.0, music_frac=0.0)
    bank = tiny_bank(order=0)
    s = SupSampler(bank, [speech], [music], noise, SupConfig(**base, p_jump=1.0, jump_age=(age, age)), seed=4, length=n)
    jumps = 0
    for _ in range(12):
        x, d = s.example()
        info = s.info
        if info["jump_age_s"] == 0:  # silent after the cut: left static
            assert info["jump_from"] == -1
            continue
        jumps += 1
        assert info["jump_age_s"] == age
        old = bank["delay"][info["room"], info["jump_from"]]
        assert d == bank["delay"][info["room"], info["position"]] and info["jump_from"] != info["position"]
        a = x.astype(np.float64)
        after = upsampled_gcc_phat_delay(a[0, cut + 600:], a[1, cut + 600:])
        before = upsampled_gcc_phat_delay(a[0, :cut - 600], a[1, :cut - 600])
        assert abs(after - d) <= 0.3 and abs(before - old) <= 0.3, (after, d, before, old)
    assert jumps >= 6
    # without jumps: the same examples as a sampler that never heard of them
    a = SupSampler(bank, [speech], [music], noise, SupConfig(**base), seed=4, length=n)
    b = SupSampler(bank, [speech], [music], noise, SupConfig(**base, p_jump=0.0, jump_age=(0.1, 0.2)), seed=4, length=n)
    for _ in range(3):
        (xa, da), (xb, db) = a.example(), b.example()
        assert da == db and np.array_equal(xa, xb)


def test_band_logits_match_the_literal_window_pairs():
    torch.manual_seed(0)
    m = StreamEncoder(EncoderConfig(layers=small_layers()))
    K = 3
    N = example_length(K)
    x = torch.randn(2, 2, N)
    lg = band_logits(m, x[:, 0], x[:, 1], K)
    assert lg.shape == (2, K, 49)
    e_all = all_window_embeddings(m, x[:, 1])
    assert torch.allclose(e_all, m.window_embeddings(x[:, 1], stride=1), atol=1e-6)
    for k in range(K):
        s = 24 + 8 * k
        eL = m.window_embeddings(x[:, 0], starts=[s])[:, 0]
        for j, d in enumerate((-24, -3, 0, 7, 24)):
            eR = m.window_embeddings(x[:, 1], starts=[s + d])[:, 0]
            assert torch.allclose(lg[:, k, d + 24], (eL * eR).sum(-1) / m.cfg.tau, atol=1e-4)


def test_supervised_losses_are_minimised_by_the_true_delay():
    torch.manual_seed(0)
    for true in (3.3, -7.75, 0.0, 12.5):
        t = torch.tensor([true], dtype=torch.float64)
        st = soft_target(t, 24)
        assert abs(float((st * torch.arange(-24, 25)).sum()) - true) < 1e-6
        # (a) among band distributions that put the delay at c (two-bin, smoothed), every loss
        # is smallest for c = the true delay
        cands = np.unique(np.round(np.r_[np.arange(-20, 20.01, 0.5),
                                         true + np.arange(-1, 1.01, 0.05)], 2))
        for key in ("sup", "span", "reg"):
            vals = []
            eps = 0.0 if key == "reg" else 0.02  # smoothing (CE needs no zeros; reg no bias)
            for c in cands:
                q = (1 - eps) * soft_target(torch.tensor([c]), 24) + eps / 49 + 1e-12
                logits = torch.log(q).float()[:, None, :].expand(1, 4, 49)
                vals.append(float(supervised_losses(logits, t)[key]))
            assert cands[int(np.argmin(vals))] == pytest.approx(true, abs=0.051), key
        # (b) free logits trained on the losses converge to the true fractional delay
        z = torch.zeros(1, 4, 49, requires_grad=True)
        opt = torch.optim.Adam([z], lr=0.1)
        for _ in range(300):
            L = supervised_losses(z, t)
            loss = L["sup"] + L["span"] + L["reg"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        p = z.detach().softmax(-1)
        expect = (p * torch.arange(-24, 25)).sum(-1)
        assert torch.allclose(expect, torch.full_like(expect, true), atol=0.05), (true, expect)


def test_span_pooling():
    torch.manual_seed(0)
    t = torch.tensor([5.0])
    # identical windows: the span loss is the per-window loss
    row = torch.randn(1, 1, 49)
    L = supervised_losses(row.expand(1, 6, 49), t)
    assert torch.allclose(L["span"], L["sup"], atol=1e-5)
    # 6 windows right at +5, 4 wrong windows each confidently at a different wrong delay: the
    # pooled distribution (both poolings) peaks at the truth, and its loss is below the
    # per-window average
    good = torch.full((6, 49), -10.0)
    good[:, 5 + 24] = 5.0
    bad = torch.full((4, 49), -10.0)
    for i, d in enumerate((-20, -9, 14, 22)):
        bad[i, d + 24] = 8.0
    logits = torch.cat([good, bad])[None]
    for pool in ("prob", "logp"):
        L = supervised_losses(logits, t, pool)
        assert L["span"] < L["sup"], pool
    lp = torch.log_softmax(logits, -1)
    pooled_prob = lp.exp().mean(1)
    assert int(pooled_prob.argmax()) == 5 + 24
    pooled_logp = torch.log_softmax(lp.sum(1), -1)
    assert torch.allclose(supervised_losses(logits, t, "logp")["span"], -pooled_logp[0, 29], atol=1e-5)


def write_sup_data(tmp_path):
    speech, music, noise = tiny_pools(1)
    np.savez(tmp_path / "bank.npz", **tiny_bank())
    paths = {}
    for name, p in (("speech", speech), ("music", music), ("noise", noise)):
        np.savez(tmp_path / f"{name}.npz", audio=p.audio, offsets=p.offs)
        paths[name] = str(tmp_path / f"{name}.npz")
    return ["--sup-bank", str(tmp_path / "bank.npz"), "--sup-speech", paths["speech"],
            "--sup-music", paths["music"], "--sup-noise", paths["noise"], "--span-windows", "3",
            "--sup-batch", "2"]


def music_folder(tmp_path):
    import soundfile as sf
    d = tmp_path / "music"
    d.mkdir(exist_ok=True)
    sf.write(d / "a.wav", np.random.default_rng(0).standard_normal((16000, 2)).astype(np.float32) * 0.1, 16000)
    return str(d)


def test_semi_supervised_train_and_bit_exact_resume(tmp_path):
    from tded_train.train import main
    common = (["--music", music_folder(tmp_path), "--sim", "", "--arch", "small", "--batch", "2",
               "--epoch-steps", "2", "--val-clips", "", "--log-every", "1", "--threads", "1",
               "--w-ssl", "1", "--w-sup", "1", "--w-span", "1", "--w-reg", "0.1"]
              + write_sup_data(tmp_path))
    main(["--out", str(tmp_path / "full"), "--epochs", "2"] + common)
    main(["--out", str(tmp_path / "part"), "--epochs", "2", "--ckpt-every", "1",
          "--publish", str(tmp_path / "pub")] + common + ["--stop-after", "1"])
    main(["--out", str(tmp_path / "part"), "--epochs", "2", "--resume"] + common)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert set(a["history"][-1]) >= {"loss_ssl", "loss_sup", "loss_span", "loss_reg"}
    assert (tmp_path / "pub" / "last.pt").exists()
    from tded_train.export import import_model
    _, h = import_model(tmp_path / "full" / "best.safetensors")
    assert h["objective"] == "stereocrw+supervised"
    # supervised only: no unlabeled data needed
    main(["--out", str(tmp_path / "suponly"), "--epochs", "1", "--music", "", "--w-ssl", "0"]
         + [c for c in common if c not in ("--music",)][1:] if False else
         ["--out", str(tmp_path / "suponly"), "--epochs", "1", "--w-ssl", "0", "--music",
          "--sim", "", "--arch", "small", "--epoch-steps", "1", "--val-clips", "",
          "--threads", "1", "--w-sup", "1"] + write_sup_data(tmp_path))
    c = torch.load(tmp_path / "suponly" / "last.pt", weights_only=True)
    assert c["step"] == 1 and "loss_ssl" not in c["history"][-1]


def test_distributed_two_processes_gloo(tmp_path):
    """torchrun --nproc_per_node 2 (gloo, CPU): two steps, every rank's data state in the
    checkpoint, identical weights on both ranks, and a resume on 2 processes."""
    common = (["--music", music_folder(tmp_path), "--sim", "", "--arch", "small", "--batch", "2",
               "--epoch-steps", "2", "--val-clips", "", "--log-every", "1", "--threads", "1",
               "--w-sup", "1", "--w-span", "1"] + write_sup_data(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TRAIN)}
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "0" if False else str(29500 + os.getpid() % 1000),
           "-m", "tded_train.train", "--out", str(tmp_path / "ddp")]
    p = subprocess.run(run + ["--epochs", "2", "--stop-after", "2"] + common, cwd=TRAIN, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    ck = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert ck["step"] == 2 and len(ck["rank_states"]) == 2
    assert ck["rank_states"][0]["sup"] != ck["rank_states"][1]["sup"]  # each rank its own data
    assert ck["provenance"]["world_size"] == 2
    p = subprocess.run(run + ["--epochs", "2", "--resume"] + common, cwd=TRAIN, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resumed from" in p.stdout
    ck2 = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert ck2["step"] == 4
    assert any(not torch.equal(ck["model"][k], ck2["model"][k]) for k in ck["model"])
