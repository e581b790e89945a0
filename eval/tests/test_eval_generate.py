"""Generator: geometry, ground truth against an independent cross-correlation, exact SNR."""
import math

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

import generate as gen
import sources as srcmod

UP = 32  # cross-correlation upsampling: 1/32 sample grid, refined by a parabola


def noise_pool():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3 * gen.RATE)
    return [srcmod.Source("test/white.wav", "speech", x / np.max(np.abs(x)))]


def xcorr_delay(left, right, max_lag=30):
    """Delay of right relative to left (samples, positive = right later), independent check."""
    L = resample_poly(left, UP, 1)
    R = resample_poly(right, UP, 1)
    n = len(L) + len(R)
    cc = np.fft.irfft(np.fft.rfft(R, n) * np.conj(np.fft.rfft(L, n)), n)
    m = max_lag * UP
    cc = np.concatenate([cc[-m:], cc[:m + 1]])
    k = int(np.argmax(cc))
    y0, y1, y2 = cc[k - 1], cc[k], cc[k + 1]
    frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return (k - m + frac) / UP


@pytest.mark.parametrize("room", list(gen.ROOMS))
@pytest.mark.parametrize("azimuth,distance", [(-90, 0.5), (-41, 2.9), (0, 1.7), (17, 0.8),
                                              (63, 2.2), (90, 3.0)])
def test_truth_matches_crosscorrelation_on_anechoic_noiseless_clip(tmp_path, room, azimuth,
                                                                    distance):
    spec = {"kind": "single", "room": room, "rt60": None, "snr": None, "seed": 1, "index": 0,
            "samples": 8000, "name": "a.wav", "azimuth": azimuth, "distance": distance}
    row = gen.make_clip(spec, noise_pool(), tmp_path, subtype="FLOAT")
    x, sr = sf.read(str(tmp_path / "a.wav"))
    assert sr == 16000 and x.shape == (8000, 2)
    measured = xcorr_delay(x[:, 0], x[:, 1])
    assert abs(measured - row["delay_samples"]) < 0.05, (measured, row["delay_samples"])
    assert abs(row["delay_ms"] - row["delay_samples"] / 16.0) < 1e-9


def test_azimuth_sign_convention():
    for room in gen.ROOMS:
        r = gen.ROOMS[room]
        for az in (30, 90):
            p = gen.source_position(room, az, 1.0)
            assert np.linalg.norm(p - r["mic_l"]) < np.linalg.norm(p - r["mic_r"])
            assert gen.true_delay_s(room, p) > 0           # right channel later
            assert gen.true_delay_s(room, gen.source_position(room, -az, 1.0)) < 0
        assert abs(gen.true_delay_s(room, gen.source_position(room, 0, 2.0))) < 1e-12
        # far field: delay ~ d sin(az) / c
        d = gen.mic_distance(room)
        far = gen.true_delay_s(room, gen.source_position(room, 30, 3.0))
        assert far == pytest.approx(d * 0.5 / gen.C, rel=0.01)


def test_every_source_position_is_inside_its_room_at_mic_height():
    for room, r in gen.ROOMS.items():
        for az in range(-90, 91, 5):
            for dist in (0.5, 1.75, 3.0):
                p = gen.source_position(room, az, dist)
                assert np.all(p > 0) and np.all(p < np.asarray(r["dims"])), (room, az, dist, p)
                assert p[2] == pytest.approx(r["mic_l"][2])
                centre = 0.5 * (np.asarray(r["mic_l"]) + np.asarray(r["mic_r"]))
                assert np.linalg.norm(p - centre) == pytest.approx(dist)


def test_paper_rooms_and_mic_spacings():
    assert gen.mic_distance("room1") == pytest.approx(0.30)
    assert gen.mic_distance("room2") == pytest.approx(0.20)
    assert gen.mic_distance("room3") == pytest.approx(math.sqrt(0.05))


def test_inverse_sabine_matches_pyroomacoustics_and_clamps_like_the_paper():
    import pyroomacoustics as pra
    for r in gen.ROOMS.values():
        for nominal in gen.NOMINAL_RT60:
            e, order = gen.inverse_sabine(nominal / 1.4, r["dims"])
            try:
                e_ref, order_ref = pra.inverse_sabine(nominal / 1.4, list(r["dims"]), c=343.0)
            except ValueError:  # pyroomacoustics refuses absorption >= 1; paper clamps
                assert e == 0.85
                continue
            assert e == pytest.approx(e_ref) and order == order_ref


def test_noise_is_at_exact_snr_over_both_channels():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.standard_normal(5000), 0.3 * rng.standard_normal(5000)])
    for snr in gen.SNRS_DB:
        y = gen.add_noise(x, snr, np.random.default_rng(1))
        n = y - x
        got = 10 * np.log10(np.mean(x ** 2) / np.mean(n ** 2))
        assert got == pytest.approx(snr, abs=1e-9)
        assert abs(np.corrcoef(n[0], n[1])[0, 1]) < 0.1  # independent per channel


def test_plan_small_and_full_cover_the_grid():
    small = gen.plan("small", 7)
    assert 20 <= len(small) <= 100
    assert {s["room"] for s in small} == set(gen.ROOMS)
    assert {s["rt60"] for s in small if s["kind"] == "single"} == set(gen.NOMINAL_RT60)
    assert {s["snr"] for s in small if s["kind"] == "single"} == set(gen.SNRS_DB)
    assert {s["level"] for s in small if s["kind"] == "mixture"} == set(gen.LEVELS)
    full = gen.plan("full", 7)
    assert len(full) >= 1000
    cells = {(s["room"], s["rt60"], s["snr"]) for s in full if s["kind"] == "single"}
    assert len(cells) == 3 * 5 * 5


def test_mixture_clip_truth_is_the_dominant_source(tmp_path):
    pool = noise_pool() + [srcmod.Source("test/white2.wav", "speech",
                                         np.random.default_rng(9).standard_normal(3 * 16000))]
    spec = {"kind": "mixture", "room": "room1", "rt60": 0.3, "snr": 30, "level": 0.5,
            "seed": 4, "index": 2, "samples": 1151, "name": "m.wav", "music_fraction": 0.0}
    row = gen.make_clip(spec, pool, tmp_path)
    x, _ = sf.read(str(tmp_path / "m.wav"))
    assert x.shape == (gen.MIXTURE_SAMPLES, 2)
    assert row["distractor_azimuth_deg"] != row["azimuth_deg"]
    p = gen.source_position("room1", row["azimuth_deg"], row["distance"])
    assert row["delay_samples"] == pytest.approx(gen.true_delay_s("room1", p) * 16000)


def test_cli_small_set_is_deterministic(tmp_path, monkeypatch):
    # synthetic espeak pool only when nothing was fetched; a fixed pool keeps this fast
    args = ["--size", "small", "--seed", "7", "--n-single", "6", "--n-mixture", "1"]
    assert gen.main(["--out", str(tmp_path / "a")] + args) == 0
    assert gen.main(["--out", str(tmp_path / "b")] + args) == 0
    ta = (tmp_path / "a" / "truth.csv").read_text()
    assert ta == (tmp_path / "b" / "truth.csv").read_text()
    rows = gen.read_truth(tmp_path / "a" / "truth.csv")
    assert len(rows) == 6 + 5
    for r in rows:
        info = sf.info(str(tmp_path / "a" / r["file"]))
        assert info.samplerate == 16000 and info.channels == 2
        assert int(r["samples"]) == info.frames
    a0 = sf.read(str(tmp_path / "a" / rows[0]["file"]))[0]
    b0 = sf.read(str(tmp_path / "b" / rows[0]["file"]))[0]
    assert np.array_equal(a0, b0)


def test_subset_is_the_same_clips_as_the_whole_plan():
    whole = {s["name"]: s for s in gen.plan("full", 7)}
    sub = gen.plan("full", 7, subset=(2, 3))
    assert len(sub) == 3 * 5 * 5 * 2 + 5 * 3
    for s in sub:
        assert s == whole[s["name"]]
    per_cell = {}
    for s in sub:
        key = (s["room"], s["rt60"], s["snr"]) if s["kind"] == "single" else s["level"]
        per_cell.setdefault(key, []).append(s["index"])
    for key, idx in per_cell.items():   # the first clips of each cell in the whole plan
        first = sorted(x["index"] for x in whole.values() if (
            (x["room"], x["rt60"], x["snr"]) if x["kind"] == "single" else x["level"]) == key)
        assert sorted(idx) == first[:len(idx)], key


def test_reuse_keeps_complete_clips_and_rewrites_truth(tmp_path):
    args = ["--out", str(tmp_path), "--size", "small", "--seed", "5", "--n-single", "3",
            "--n-mixture", "0"]
    assert gen.main(args) == 0
    truth = (tmp_path / "truth.csv").read_text()
    rows = gen.read_truth(tmp_path / "truth.csv")
    keep, redo = tmp_path / rows[0]["file"], tmp_path / rows[1]["file"]
    keep.write_bytes(keep.read_bytes())                    # complete: must be kept as is
    mtime = keep.stat().st_mtime_ns
    x = sf.read(str(redo))[0]
    sf.write(str(redo), x[:100], 16000)                     # truncated: must be rendered again
    (tmp_path / "truth.csv").unlink()
    assert gen.main(args + ["--reuse"]) == 0
    assert (tmp_path / "truth.csv").read_text() == truth
    assert keep.stat().st_mtime_ns == mtime
    assert np.array_equal(sf.read(str(redo))[0], x)
