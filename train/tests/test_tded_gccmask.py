"""Learned pooled-GCC weighting (tded_train.gccmask): features, the classical path it replaces,
learning on delayed noise, export round trip, and the committed model + fixture."""
from pathlib import Path

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from tded_train import gccmask as gm

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "tded-gccmask-v10.safetensors"
FIXTURE = REPO / "Tests" / "EngineTests" / "Fixtures" / "gccmask_fixture.safetensors"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def delayed_noise(delay, n=1151, snr=30.0, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(n + 64)
    t = np.arange(-32, 33)
    h = np.sinc(t - delay) * np.hanning(len(t))
    x = np.stack([s[32:32 + n], np.convolve(s, h, mode="same")[32:32 + n]])
    return x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x ** 2) / 10 ** (snr / 10))


def perturbed(seed: int, scale: float, bands=()) -> gm.GccMask:
    """A network (eval mode) with its initial weights moved by `scale` x Gaussian noise, so it
    is not the symmetric initial one; deterministic in `seed`."""
    torch.manual_seed(seed)
    net = gm.GccMask(bands=bands).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def exported_pair(tmp_path, scale: float) -> list[gm.GccMask]:
    """Two perturbed networks (seeds 3 and 4), exported as tmp_path/n3.safetensors and n4."""
    nets = [perturbed(seed, scale) for seed in (3, 4)]
    for seed, net in zip((3, 4), nets):
        gm.export(net, tmp_path / f"n{seed}.safetensors")
    return nets


def test_pooled_spectra_sum_the_windows():
    x = delayed_noise(2.0)
    S = gm.pooled_spectra(x)
    assert S.shape == (4, gm.BINS)
    starts = range(0, 1151 - 1024 + 1, 16)
    assert len(list(starts)) == 8
    G = sum(np.conj(np.fft.rfft(x[0, s:s + 1024], 2048)) * np.fft.rfft(x[1, s:s + 1024], 2048) for s in starts)
    np.testing.assert_allclose(S[0], G.real, rtol=1e-4, atol=1e-3)
    assert np.all(S[2] >= 0) and np.all(S[3] >= 0)
    assert S[1, 0] == 0 and S[1, -1] == 0


def test_max_lag_is_the_engines_auto_range():
    # EstimatorOptions.autoMaxDelayMs: d / c * 1.1 + 1 sample, rounded down to whole samples
    assert gm.max_lag(0.3) == int(0.3 / 343 * 1.1 * 16000 + 1)
    assert gm.max_lag(0.05) == 3


def test_classical_path_finds_fractional_delays():
    net = gm.GccMask(use_mask=False, use_head=False)
    for d in (3.3, -5.7, 0.45):
        S = torch.from_numpy(gm.pooled_spectra(delayed_noise(d)))[None]
        M = gm.in_range_mask([16])
        c, _ = net.correlation(S)
        est = gm.decode(c.masked_fill(~M, -1e4), M)
        assert abs(est.item() - d) < 0.1, (d, est)


def test_soft_target_expectation_is_the_delay():
    y = torch.tensor([3.3, -5.75, 0.1])
    t = gm.soft_target(y)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert torch.allclose((t * torch.tensor(gm.GRID, dtype=torch.float32)).sum(1), y, atol=1e-5)


def test_training_learns_delays_it_did_not_know():
    """On low-SNR delayed noise the untrained model is poor; a few hundred steps lower the loss
    and bring the error down."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    ys = rng.uniform(-10, 10, 96)
    S = torch.from_numpy(np.stack([gm.pooled_spectra(delayed_noise(y, snr=-3, seed=i)) for i, y in enumerate(ys)]))
    M = gm.in_range_mask([16] * len(ys))
    Y = torch.tensor(ys, dtype=torch.float32)
    T = gm.soft_target(Y)
    net = gm.GccMask()
    opt = torch.optim.Adam(net.parameters(), 3e-3)

    def loss():
        return -(T * F.log_softmax(net(S, M), 1)).sum(1).mean()
    first = loss().item()
    for _ in range(60):
        opt.zero_grad()
        l_ = loss()
        l_.backward()
        opt.step()
    assert loss().item() < first - 0.3, (first, loss().item())


@pytest.mark.parametrize("bands", [(), (64, 128, 256, 512)])
def test_export_round_trip(tmp_path, bands):
    net = perturbed(3, 0.01, bands)
    h = gm.export(net, tmp_path / "m.safetensors")
    assert h["format"] == gm.FORMAT and h["mask_layers"] == 4 and h["head_layers"] == 3
    assert h["version"] == (2 if bands else 1) and h.get("head_bands", []) == list(bands)
    back = gm.load_exported(tmp_path / "m.safetensors")
    assert back.bands == tuple(bands)
    S = torch.from_numpy(np.stack([gm.pooled_spectra(delayed_noise(d, snr=5, seed=2)) for d in (1.0, -4.0)]))
    M = gm.in_range_mask([10, 10])
    with torch.no_grad():
        assert torch.equal(net(S, M), back(S, M))


def test_committed_fixture_matches_the_committed_model():
    members = gm.load_members(MODEL)
    # the shipped set: an ensemble of four networks for short pools (posterior median at
    # temperature 0.7), one network from 0.25 s (argmax)
    assert [m for m, _ in members] == [0, 0, 0, 0, 4000]
    bands = (64, 128, 256, 512)
    assert [n.bands for _, n in members] == [(), bands, (), bands, bands]
    assert [n.decoding for _, n in members] == [("median", 0.7)] * 4 + [("argmax", 1.0)]
    assert [n.dominant for _, n in members] == [None] * 4 + [(2.0, 2.0, (4.0, 0.03, 1.0, 0.55, 125))]
    fx = load_file(str(FIXTURE))
    M = gm.in_range_mask(fx["max_lag"].numpy())
    with torch.no_grad():
        for i, (_, net) in enumerate(members):
            np.testing.assert_allclose(gm.decode_net(net, net(fx["spectra"], M), M, fx["spectra"]).numpy(), fx[f"delay.m{i}"].numpy(), atol=1e-4)
        short = gm.member_for(members, 1)
        assert isinstance(short, gm.Ensemble) and gm.member_for(members, 187) is members[4][1]
        assert short.decoding == ("median", 0.7)
        z = short(fx["spectra"], M)
        d = gm.decode_net(short, z, M)
        for i in range(4):
            np.testing.assert_allclose(d.numpy(), fx[f"delay.set{i}"].numpy(), atol=1e-4)
        np.testing.assert_allclose(fx["delay.set4"].numpy(), fx["delay.m4"].numpy(), atol=1e-4)
        # the -15 dB clip (6) has a broad posterior: argmax, the median and the median at
        # another temperature all differ there, so the parity test checks the rule and its
        # temperature
        for other in (gm.decode(z, M), gm.decode(z, M, "median", 1.0)):
            assert abs(float(other[6] - d[6])) > 0.5
    np.testing.assert_allclose(d.numpy(), fx["delay"].numpy(), atol=1e-4)
    # the ensemble is neither of its networks: the engine's parity test checks the averaging
    for i in range(4):
        assert (d - fx[f"delay.m{i}"]).abs().max() > 0.005
    # and the fixture's clips are what fixture_clips renders today
    S = torch.from_numpy(np.stack([gm.pooled_spectra(x) for x, _, _ in gm.fixture_clips()]))
    np.testing.assert_allclose(S.numpy(), fx["spectra"].numpy(), rtol=1e-5, atol=1e-3)
    # clean clips are within a tenth of a sample of the truth
    err = (d - fx["truth"]).abs().numpy()
    assert err[0] < 0.1 and err[1] < 0.1 and err[4] < 0.1, err
    # the long two-talker clips: their spectra and blocks are what the audio gives; the spread
    # rule switches on the first (more than a sample away from the answer without blocks) and
    # not on the second
    long = members[4][1]
    audio, bw = fx["long.audio"].numpy().astype(np.float64), 125
    for i in range(2):
        np.testing.assert_allclose(gm.pooled_spectra(audio[i]), fx["long.spectra"][i].numpy(), rtol=1e-5, atol=1e-3)
        blocks = gm.block_spectra(audio[i], bw)
        np.testing.assert_allclose(blocks, fx["long.blocks"][i].numpy(), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(blocks.sum(0), fx["long.spectra"][i].numpy(), rtol=1e-4, atol=1e-2)
        windows = int(fx["long.windows"][i])
        assert gm.block_window_counts(windows, bw) == fx["long.block_windows"][i].int().tolist() == [125, 125, 125, 62]
        S = fx["long.spectra"][i:i + 1]
        M = gm.in_range_mask([float(fx["long.max_lag"][i])])
        with torch.no_grad():
            z = long(S, M)
            assert abs(float(gm.decode_net(long, z, M, S, [(blocks, windows)])[0]) - float(fx["long.delay"][i])) < 1e-4
            assert abs(float(gm.decode_net(long, z, M, S)[0]) - float(fx["long.delay_without_blocks"][i])) < 1e-4
    switched = (fx["long.delay"] - fx["long.delay_without_blocks"]).abs()
    assert switched[0] > 1 and switched[1] < 1e-6


def test_median_decoding():
    """The posterior median: a flat posterior gives the middle of the search range, one point's
    mass its own lag, two masses 1 : 3 a point inside the larger one's cell; the temperature
    sharpens; points out of range carry no mass and the answer stays inside the range."""
    n = len(gm.GRID)
    M = gm.in_range_mask([8])
    flat = torch.zeros(1, n)
    assert abs(float(gm.decode(flat, M, "median"))) < 1e-6
    at = lambda lag: int(np.argmin(np.abs(gm.GRID - lag)))
    j1, j3 = at(-2.0), at(3.0)
    two = torch.full((1, n), -1e4)
    two[0, j1], two[0, j3] = 0.0, math.log(3.0)
    s = gm.GRID_STEP
    assert float(gm.decode(two, M, "median")) == pytest.approx(3.0 - s / 2 + s / 3, abs=1e-5)
    assert float(gm.decode(two, M, "median", 0.5)) == pytest.approx(3.0 - s / 2 + s * 4 / 9, abs=1e-5)
    assert float(gm.decode(two, M, "argmax")) == pytest.approx(3.0, abs=1e-6)
    edge = torch.zeros(1, n)
    edge[0, -1] = 50.0  # out of range (beyond 8 samples): ignored
    assert abs(float(gm.decode(edge, M, "median"))) < 1e-6
    edge[0, at(8.0)] = 50.0  # the last point in range: the median stays at 8
    assert float(gm.decode(edge, M, "median")) == pytest.approx(8.0, abs=1e-6)
    with pytest.raises(ValueError, match="decoding rule"):
        gm.decode(flat, M, "mean")


TA, TB = 4.0, -6.0  # the two sources of the dominant-source check's tests (samples)


def two_source_spectra(pA: float, pB: float) -> np.ndarray:
    """Pooled spectra [4, BINS] of two white sources at TA and TB with powers pA and pB:
    G = conj(L) R is each source's power times e^{-i w t}."""
    w = 2 * np.pi * np.arange(gm.BINS) / gm.NFFT
    G = pA * np.exp(-1j * w * TA) + pB * np.exp(-1j * w * TB)
    return np.stack([G.real, G.imag, np.full(gm.BINS, pA + pB), np.full(gm.BINS, pA + pB)]).astype(np.float32)


def logits_favouring_b():
    """Logits over the grid with B's peak (TB) best and A's (TA) 1 nat below, the search range
    of 16 samples, and their argmax delay: (logits, in_range, delay)."""
    at = lambda lag: int(np.argmin(np.abs(gm.GRID - lag)))
    z = torch.full((1, len(gm.GRID)), -5.0)
    z[0, at(TB)], z[0, at(TA)] = 0.0, -1.0
    M = gm.in_range_mask([16])
    z = z.masked_fill(~M, -1e4)
    return z, M, gm.decode(z, M)


def test_dominant_source_check():
    """Two sources, A with 3x B's power; the logits favour B's peak by 1 nat. A null steered at
    each leaves the other's power times the same comb filter, so the check switches to A when
    the ratio (3) beats min_power_ratio and the gap is within max_gap."""
    pA, pB = 3.0, 1.0
    S = torch.from_numpy(two_source_spectra(pA, pB))[None]
    assert gm.null_power(S[0].numpy(), TB) / gm.null_power(S[0].numpy(), TA) == pytest.approx(pA / pB, rel=1e-4)
    z, M, d = logits_favouring_b()
    tA, tB = TA, TB
    assert float(d) == pytest.approx(tB)
    assert float(gm.louder_peak(S, z, M, d, 2.0, 2.0)) == pytest.approx(tA)
    assert float(gm.louder_peak(S, z, M, d, 0.5, 2.0)) == pytest.approx(tB)   # beyond the gap
    assert float(gm.louder_peak(S, z, M, d, 2.0, 4.0)) == pytest.approx(tB)   # 3x, not 4x


def test_dominant_check_spread_rule():
    """The spread rule: A's and B's flat spectra per block; the logits favour B by 1 nat and the
    null rule is off (ratio 100). A has 2.25x B's power over the clip; when A's share changes
    from block to block (two talkers) the rule switches to A, when it stays the same (as a
    reflection's would) or only one block counts, it does not."""
    tA, tB, spectra = TA, TB, two_source_spectra
    z, M, d = logits_favouring_b()
    spread = (4.0, 0.03, 1.0, 0.55, 125)
    # the comb-corrected ratio of flat spectra is the power ratio, whatever epsilon
    assert gm.demixed_log_ratio(spectra(3.0, 1.0), tB, tA, 0.03) == pytest.approx(math.log(3.0), abs=1e-4)
    assert gm.demixed_log_ratio(spectra(3.0, 1.0), tB, tA, 0.5) == pytest.approx(math.log(3.0), abs=1e-4)
    varying = np.stack([spectra(a, 1.0) for a in (4.0, 0.5, 4.0, 0.5)])
    steady = np.stack([spectra(2.25, 1.0)] * 4)
    for blocks, windows, expect in ((varying, 500, tA), (steady, 500, tB), (varying[:2], 140, tB)):
        S = torch.from_numpy(blocks.sum(0))[None]
        got = gm.louder_peak(S, z, M, d, 2.0, 100.0, spread, [(blocks, windows)])
        assert float(got) == pytest.approx(expect), (windows, expect)
    # (140 windows: blocks of 125 and 15; the second holds under a quarter of a block and does not count)
    # a larger gap than the rule's max_gap, or a ratio under its min_ratio: no switch
    S = torch.from_numpy(varying.sum(0))[None]
    assert float(gm.louder_peak(S, z, M, d, 2.0, 100.0, (0.5, 0.03, 1.0, 0.55, 125), [(varying, 500)])) == pytest.approx(tB)
    assert float(gm.louder_peak(S, z, M, d, 2.0, 100.0, (4.0, 0.03, 3.0, 0.55, 125), [(varying, 500)])) == pytest.approx(tB)
    # without blocks the rule is off
    assert float(gm.louder_peak(S, z, M, d, 2.0, 100.0, spread)) == pytest.approx(tB)


def test_block_spectra_partition_the_pooled_windows():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4000))
    windows = (4000 - gm.WINDOW) // gm.STEP + 1
    b = gm.block_spectra(x, 50)
    assert b.shape == (4, 4, gm.BINS) and gm.block_window_counts(windows, 50) == [50, 50, 50, 37]
    np.testing.assert_allclose(b.sum(0), gm.pooled_spectra(x), rtol=1e-4, atol=1e-2)
    assert gm.block_spectra(x[:, :1000], 50).shape == (0, 4, gm.BINS)
    # the blocks the spread rule counts: at least a quarter of a block, and none at all past
    # MAX_SPREAD_BLOCKS blocks (the engine drops them for longer streams)
    assert len(gm.spread_blocks(b, windows, 50)) == 4 and len(gm.spread_blocks(b, 160, 50)) == 3
    many = np.zeros((gm.MAX_SPREAD_BLOCKS + 1, 4, gm.BINS))
    assert len(gm.spread_blocks(many[:-1], gm.MAX_SPREAD_BLOCKS * 8, 8)) == gm.MAX_SPREAD_BLOCKS
    assert len(gm.spread_blocks(many, gm.MAX_SPREAD_BLOCKS * 8 + 1, 8)) == 0


def test_bundle_writes_the_spread_rule(tmp_path):
    exported_pair(tmp_path, 0.05)
    h = gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 4000)], tmp_path / "set.safetensors",
                  dominant={4000: (2.0, 2.0, (4.0, 0.03, 1.0, 0.55, 125))})
    assert h["members"][1]["decode"]["dominant"] == {
        "max_gap": 2.0, "min_power_ratio": 2.0,
        "spread": {"max_gap": 4.0, "epsilon": 0.03, "min_ratio": 1.0, "min_spread": 0.55, "block_windows": 125}}
    assert gm.load_members(tmp_path / "set.safetensors")[1][1].dominant == (2.0, 2.0, (4.0, 0.03, 1.0, 0.55, 125))
    for bad in ({"max_gap": 4, "epsilon": 0, "min_ratio": 1, "min_spread": 0.5, "block_windows": 125},
                {"max_gap": 4, "epsilon": 0.03, "min_ratio": 1, "min_spread": 0.5, "block_windows": 4},
                {"max_gap": 4, "epsilon": 0.03, "min_ratio": 1, "min_spread": 0.5, "block_windows": 12.5},
                {"max_gap": 4, "epsilon": 0.03, "min_ratio": 1}):
        with pytest.raises(ValueError, match="'spread' needs"):
            gm.dominant_of({"rule": "argmax", "dominant": {"max_gap": 2, "min_power_ratio": 2, "spread": bad}})


def test_bundle_writes_the_decoding(tmp_path):
    exported_pair(tmp_path, 0.05)
    h = gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 0), (tmp_path / "n3.safetensors", 4000)],
                  tmp_path / "set.safetensors", decoding={0: ("median", 0.7)})
    assert h["version"] == 4
    assert [m.get("decode") for m in h["members"]] == [{"rule": "median", "temperature": 0.7}] * 2 + [None]
    back = gm.load_members(tmp_path / "set.safetensors")
    assert [n.decoding for _, n in back] == [("median", 0.7)] * 2 + [("argmax", 1.0)]
    assert gm.member_for(back, 1).decoding == ("median", 0.7)
    with pytest.raises(ValueError, match="no member has"):
        gm.bundle([(tmp_path / "n3.safetensors", 0)], tmp_path / "bad.safetensors", decoding={16: ("median", 1.0)})
    with pytest.raises(ValueError, match="0.05...20"):
        gm.bundle([(tmp_path / "n3.safetensors", 0)], tmp_path / "bad.safetensors", decoding={0: ("median", 0.0)})
    with pytest.raises(ValueError, match="0.05...20"):  # the median needs its temperature, as in the engine
        gm.decoding_of({"rule": "median"})
    assert gm.decoding_of({"rule": "argmax"}) == ("argmax", 1.0)
    h = gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 4000)], tmp_path / "dom.safetensors",
                  decoding={0: ("median", 0.7)}, dominant={4000: (2.0, 2.0)})
    assert h["members"][1]["decode"] == {"rule": "argmax", "dominant": {"max_gap": 2.0, "min_power_ratio": 2.0}}
    back = gm.load_members(tmp_path / "dom.safetensors")
    assert [n.dominant for _, n in back] == [None, (2.0, 2.0)]
    # an ensemble is decoded by one rule: a set whose members of one min_span disagree is refused
    import json
    from safetensors.torch import save_file
    meta = gm._read_meta(tmp_path / "dom.safetensors")
    meta["members"][1]["min_span"] = 0
    save_file(load_file(str(tmp_path / "dom.safetensors")), str(tmp_path / "mixed.safetensors"), metadata={"tded_gccmask": json.dumps(meta)})
    with pytest.raises(ValueError, match="another decoding"):
        gm.load_members(tmp_path / "mixed.safetensors")
    with pytest.raises(ValueError, match="needs the argmax rule"):
        gm.bundle([(tmp_path / "n3.safetensors", 0)], tmp_path / "bad.safetensors", decoding={0: ("median", 0.7)}, dominant={0: (2.0, 2.0)})


def test_bundle_round_trip_and_member_choice(tmp_path):
    nets = exported_pair(tmp_path, 0.05)
    h = gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 4000)], tmp_path / "set.safetensors")
    assert h["version"] == gm.SET_VERSION and [m["min_span"] for m in h["members"]] == [0, 4000]
    back = gm.load_members(tmp_path / "set.safetensors")
    S = torch.from_numpy(np.stack([gm.pooled_spectra(delayed_noise(d, snr=5, seed=2)) for d in (1.0, -4.0)]))
    M = gm.in_range_mask([10, 10])
    with torch.no_grad():
        for (span, b), net in zip(back, nets):
            assert torch.equal(net(S, M), b(S, M))
    # the engine's rule: 4000 samples pooled = 187 windows of 1024 at step 16
    assert gm.member_for(back, 1) is back[0][1] and gm.member_for(back, 186) is back[0][1]
    assert gm.member_for(back, 187) is back[1][1]
    with pytest.raises(ValueError, match="model set"):
        gm.load_exported(tmp_path / "set.safetensors")
    with pytest.raises(ValueError, match="never decrease"):
        gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 4000), (tmp_path / "n3.safetensors", 16)],
                  tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="1 to 8 networks"):
        gm.bundle([(tmp_path / "n3.safetensors", 16 * i) for i in range(9)], tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="already a model set"):
        gm.bundle([(tmp_path / "set.safetensors", 0)], tmp_path / "bad.safetensors")


def test_ensemble_averages_log_probabilities(tmp_path):
    """Networks with the same min_span form an ensemble: the mean of their log-softmax over the
    search range, decoded like logits; a set of one network twice gives that network's delays."""
    nets = exported_pair(tmp_path, 0.2)
    h = gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 0), (tmp_path / "n3.safetensors", 4000)],
                  tmp_path / "set.safetensors")
    assert [m["min_span"] for m in h["members"]] == [0, 0, 4000]
    back = gm.load_members(tmp_path / "set.safetensors")
    ens = gm.member_for(back, 1)
    assert isinstance(ens, gm.Ensemble) and gm.member_for(back, 187) is back[2][1]
    S = torch.from_numpy(np.stack([gm.pooled_spectra(delayed_noise(d, snr=s, seed=5)) for d, s in ((1.0, 0), (-4.0, -5), (7.3, 10))]))
    M = gm.in_range_mask([10, 12, 20])
    with torch.no_grad():
        z = ens(S, M)
        want = (F.log_softmax(nets[0](S, M).double(), 1) + F.log_softmax(nets[1](S, M).double(), 1)) / 2
        np.testing.assert_allclose(z[M].numpy(), want[M].numpy(), rtol=1e-5, atol=1e-5)
        assert (z[~M] == -1e4).all()
        twice = gm.Ensemble([nets[0], nets[0]])
        np.testing.assert_allclose(gm.decode(twice(S, M), M).numpy(), gm.decode(nets[0](S, M), M).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="at least two"):
        gm.Ensemble([nets[0]])
    # an ensemble's networks share the lag grid
    torch.manual_seed(5)
    other = gm.GccMask().eval()
    hdr = gm.export(other, tmp_path / "n5.safetensors")
    assert hdr["max_lag"] == gm.MAX_LAG
    import json
    from safetensors.torch import save_file
    meta = {**hdr, "grid_step": 0.5}
    save_file(load_file(str(tmp_path / "n5.safetensors")), str(tmp_path / "n6.safetensors"), metadata={"tded_gccmask": json.dumps(meta)})
    with pytest.raises(ValueError, match="same lag grid"):
        gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n6.safetensors", 0)], tmp_path / "bad.safetensors")


def test_live_fixture_matches_its_model():
    """The per-update (Hann, 0.2 s memory, coherence input, sub-band head: format version 2) model
    of the engine's parity test."""
    fx_dir = REPO / "Tests" / "EngineTests" / "Fixtures"
    net = gm.load_exported(fx_dir / "gccmask_live_model.safetensors")
    assert net.taper == "hann" and net.coherence and net.bands == (64, 128, 256, 512)
    fx = load_file(str(fx_dir / "gccmask_live_fixture.safetensors"))
    S = torch.from_numpy(np.stack([gm.pooled_spectra(x, "hann", 0.2) for x, _, _ in gm.fixture_clips()]))
    np.testing.assert_allclose(S.numpy(), fx["spectra"].numpy(), rtol=1e-5, atol=1e-3)
    M = gm.in_range_mask(fx["max_lag"].numpy())
    with torch.no_grad():
        d = gm.decode(net(fx["spectra"], M), M)
    np.testing.assert_allclose(d.numpy(), fx["delay"].numpy(), atol=1e-4)


def test_hann_pooling_with_memory_weights_recent_windows_more():
    x = delayed_noise(4.0, n=4000)
    x[:, :2000] = delayed_noise(-6.0, n=2000, seed=9)  # an older source at another delay
    net = gm.GccMask(use_mask=False, use_head=False, taper="hann")
    M = gm.in_range_mask([16])
    for memory, want in ((0.02, 4.0), (0.0, None)):
        S = torch.from_numpy(gm.pooled_spectra(x, "hann", memory))[None]
        c, _ = net.correlation(S)
        est = gm.decode(c.masked_fill(~M, -1e4), M).item()
        if want is not None:
            assert abs(est - want) < 0.2, est


def test_sub_band_correlations_partition_the_full_one():
    """The head's sub-band correlations, each normalised by its own band's amplitude, add up
    (weighted by those amplitudes) to the full correlation; a clean delay peaks in every band."""
    net = gm.GccMask(use_mask=False, bands=(64, 128, 256, 512))
    S = torch.from_numpy(gm.pooled_spectra(delayed_noise(3.0, snr=30)))[None]
    c, w, cb = net.correlation(S, parts=True)
    assert cb.shape == (1, 5, len(gm.GRID))
    _, _, _, mag, _ = gm.mask_inputs(S)
    amp = gm._WK * (w * mag.pow(0.3)).abs()  # |w G / |G|^0.7| (classical beta 0.7)
    edges = (0, 64, 128, 256, 512, gm.BINS)
    share = torch.stack([amp[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], 1) / amp.sum(1, keepdim=True)
    np.testing.assert_allclose((cb * share[:, :, None].float()).sum(1).numpy(), c.numpy(), atol=1e-5)
    peaks = gm.GRID[cb[0].argmax(1).numpy()]
    np.testing.assert_allclose(peaks, 3.0, atol=0.25)


@pytest.mark.parametrize("bands", [(), (64, 128, 256, 512)])
def test_swapping_the_channels_negates_the_delay(bands):
    net = perturbed(4, 0.05, bands)
    xs = [delayed_noise(d, snr=3, seed=i) for i, d in enumerate((2.3, -6.1, 0.0))]
    S = torch.from_numpy(np.stack([gm.pooled_spectra(x) for x in xs]))
    Sw = torch.from_numpy(np.stack([gm.pooled_spectra(x[::-1].copy()) for x in xs]))
    M = gm.in_range_mask([12] * 3)
    with torch.no_grad():
        a, b = gm.decode(net(S, M), M), gm.decode(net(Sw, M), M)
    np.testing.assert_allclose(a.numpy(), -b.numpy(), atol=1e-5)


def test_fine_tuning_starts_from_the_exported_network_or_set_member(tmp_path):
    """--init: epoch 0 is the exported network itself (same outputs), a set member by FILE:N;
    training then moves it, and a taper mismatch is refused."""
    nets = exported_pair(tmp_path, 0.05)
    gm.bundle([(tmp_path / "n3.safetensors", 0), (tmp_path / "n4.safetensors", 4000)], tmp_path / "set.safetensors")
    rng = np.random.default_rng(4)
    ys = rng.uniform(-8, 8, 64)
    S = np.stack([gm.pooled_spectra(delayed_noise(y, snr=0, seed=i)) for i, y in enumerate(ys)])
    np.savez(tmp_path / "d.npz", S=S, Y=ys, D=np.full(len(ys), 0.2), SNR=np.zeros(len(ys)))
    Sv, Mv, _ = gm.load_set([tmp_path / "d.npz"])
    for init, ref in ((str(tmp_path / "n3.safetensors"), nets[0]), (f"{tmp_path / 'set.safetensors'}:1", nets[1])):
        for lr, moved in ((1e-12, False), (1e-2, True)):
            out = tmp_path / f"ft{len(init)}-{lr}"
            gm.train([tmp_path / "d.npz"], [tmp_path / "d.npz"], out, epochs=1, batch=32, threads=1, init=init, lr=lr)
            st = torch.load(out / "last.pt", weights_only=True)
            assert st["arch"] == ref.arch
            tuned = gm.GccMask(**st["arch"])
            tuned.load_state_dict(st["model"])
            tuned.eval()
            with torch.no_grad():
                a, b = tuned(Sv, Mv), ref(Sv, Mv)
            # a vanishing step leaves exactly the given network (to rounding); a real one moves it
            assert torch.allclose(a, b, atol=1e-4) != moved
    with pytest.raises(SystemExit, match="hann"):
        gm.train([tmp_path / "d.npz"], [tmp_path / "d.npz"], tmp_path / "bad", epochs=1, batch=32, threads=1,
                 init=str(tmp_path / "n3.safetensors"), taper="hann")


def test_data_mix_range_sets_the_distractors_level(tmp_path):
    """`gccmask data --mix-range LO HI`: the same examples (same seed, same labels) with the
    distractor at another level; a louder distractor lowers the pooled coherence."""
    from test_tded_supervised import tiny_bank, tiny_pools
    speech, music, noise = tiny_pools()
    np.savez(tmp_path / "bank.npz", **tiny_bank(order=0))
    for name, pool in (("speech", speech), ("music", music), ("noise", noise)):
        np.savez(tmp_path / f"{name}.npz", audio=pool.audio, offsets=pool.offs)
    coh, labels = {}, {}
    for level in ("0.05", "0.9"):
        out = tmp_path / f"d{level}.npz"
        gm.main(["data", "--bank", str(tmp_path / "bank.npz"), "--speech", str(tmp_path / "speech.npz"),
                "--music", str(tmp_path / "music.npz"), "--noise", str(tmp_path / "noise.npz"), "--n", "12",
                "--seed", "4", "--length", "4000", "--p-mix", "1", "--mix-range", level, level, "--out", str(out)])
        z = np.load(out)
        S = z["S"].astype(np.float64)
        c = (S[:, 0] ** 2 + S[:, 1] ** 2) / np.maximum(S[:, 2] * S[:, 3], 1e-30)
        coh[level], labels[level] = float(np.mean(c[:, 20:900])), z["Y"]
    assert np.array_equal(labels["0.05"], labels["0.9"])
    assert coh["0.9"] < 0.8 * coh["0.05"], coh
