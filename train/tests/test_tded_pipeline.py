"""Data reader, validation maths (GCC-PHAT reference, mode), training command + resume."""
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tded_train.data import CropSampler, load_stereo_folder
from tded_train.export import import_model
from tded_train.model import EncoderConfig, StreamEncoder, reference_window_embedding, small_layers
from tded_train.val import gcc_phat_votes, learned_votes, mode_aggregate, summarize


SHIPPED = Path(__file__).resolve().parents[2] / "models" / "tded-stream-v1.safetensors"


def write_folder(tmp_path, rng):
    d = tmp_path / "audio"
    d.mkdir()
    sf.write(d / "a.wav", rng.standard_normal((44100 * 2, 2)).astype(np.float32) * 0.1, 44100)
    sf.write(d / "b.flac", rng.standard_normal((16000 * 2, 2)).astype(np.float32) * 0.1, 16000)
    sf.write(d / "mono.wav", rng.standard_normal(16000 * 2).astype(np.float32) * 0.1, 16000)
    return d


def test_folder_reader_resamples_and_skips_mono(tmp_path, capsys):
    d = write_folder(tmp_path, np.random.default_rng(0))
    tracks = load_stereo_folder(d)
    assert len(tracks) == 2
    assert sorted(t.shape for t in tracks) == [(2, 32000), (2, 32000)]  # 2 s at 16 kHz each
    assert "mono.wav" in capsys.readouterr().err
    again = load_stereo_folder(d)  # from the cache
    for a, b in zip(tracks, again):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    s = CropSampler(tracks, 1216, seed=1)
    assert s.batch(3).shape == (3, 2, 1216)


def test_gcc_phat_reference_and_mode():
    rng = np.random.default_rng(0)
    n, N = 6, 1151
    truth = np.array([-9, -3, 0, 4, 11, 20])
    x = np.zeros((n, 2, N), np.float32)
    for i, k in enumerate(truth):
        s = rng.standard_normal(N + 40)
        x[i, 0] = s[20: 20 + N]
        x[i, 1] = s[20 - k: 20 - k + N]  # right[n] = left[n - k]
    v = gcc_phat_votes(x)
    assert v.shape == (n, 128)
    assert np.array_equal(v.mean(1), truth)
    assert summarize(v, truth.astype(float))["mae_mean_ms"] == 0.0
    votes = np.r_[np.full(10, 3.0), np.full(4, -7.0), 2.98, 3.02]
    assert abs(mode_aggregate(votes) - 3.0) < 1e-9


def test_learned_votes_equal_the_literal_reference():
    """learned_votes (batched, float32) equals the spec read literally, in float64: each
    window's embedding computed on its own (reference_window_embedding), the band affinities
    A(i, i+d) = <eL_i, eR_{i+d}> / tau, the softmax expectation over d = -24..24.
    A sharp tau (0.002) so a random encoder's votes move from window to window: an off-by-one
    window, a swapped channel or a sign error would exceed the tolerance."""
    torch.manual_seed(0)
    model = StreamEncoder(EncoderConfig(layers=small_layers(), tau=0.002))
    cfg, D = model.cfg, model.cfg.max_delay
    x = np.random.default_rng(0).standard_normal((2, 2, 1151)).astype(np.float32) * 0.1
    v = learned_votes(model, x)
    assert v.shape == (2, 80)  # windows D .. W-1-D of W = 1151 - 1024 + 1 = 128
    layers = [(W.double(), b.double()) for W, b in model.folded_layers()]
    d = torch.arange(-D, D + 1, dtype=torch.float64)
    clip, rows = 1, (40, 41)  # the second clip of the batch, two neighbouring windows
    xl = torch.from_numpy(x[clip, 0]).double()
    xr = torch.from_numpy(x[clip, 1]).double()
    eR = {j: reference_window_embedding(cfg, layers, xr, j) for j in range(D + rows[0] - D, D + rows[-1] + D + 1)}
    ref = []
    for row in rows:
        i = D + row
        eL = reference_window_embedding(cfg, layers, xl, i)
        p = torch.softmax(torch.stack([eR[i + k] for k in range(-D, D + 1)]) @ eL / cfg.tau, dim=0)
        ref.append(float((p * d).sum()))
    err = [abs(float(v[clip, r]) - f) for r, f in zip(rows, ref)]
    print(f"votes {[float(v[clip, r]) for r in rows]}, literal reference {ref}, |diff| {err}")
    assert max(err) < 1e-3  # measured 1.2e-4 (float32 embeddings, affinities / 0.002)
    assert abs(ref[1] - ref[0]) > 1e-2 and abs(ref[0]) > 5e-2, "the votes discriminate at that tolerance"


def test_learned_votes_of_the_shipped_model_recover_known_delays():
    """The committed model's votes find known delays of both signs (right = left delayed)."""
    model, _ = import_model(SHIPPED)
    rng = np.random.default_rng(3)
    truth = [5, -7, 0, 12]
    x = np.zeros((len(truth), 2, 1151), np.float32)
    for n, k in enumerate(truth):
        s = rng.standard_normal(1151 + 40)
        x[n, 0] = s[20: 20 + 1151]
        x[n, 1] = s[20 - k: 20 - k + 1151]  # right[t] = left[t - k]: positive = right later
    x += 0.01 * rng.standard_normal(x.shape).astype(np.float32)
    v = learned_votes(model, x * 0.1)
    med = np.median(v, axis=1)
    print("shipped model median votes", med, "truth", truth)
    assert np.all(np.abs(med - np.array(truth)) < 0.5), (med, truth)


def test_train_command_checkpoints_and_resume(tmp_path):
    from tded_train.train import main
    d = write_folder(tmp_path, np.random.default_rng(1))
    common = ["--music", str(d), "--sim", "", "--arch", "small", "--batch", "2",
              "--epoch-steps", "2", "--val-clips", "", "--log-every", "1", "--aug", "all"]
    main(["--out", str(tmp_path / "full"), "--epochs", "2"] + common)
    main(["--out", str(tmp_path / "part"), "--epochs", "2"] + common + ["--stop-after", "2"])
    main(["--out", str(tmp_path / "part"), "--epochs", "2", "--resume"] + common)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    h = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [e["step"] for e in h] == [2, 4]
    assert (tmp_path / "full" / "best.safetensors").exists()


def test_fine_tune_starts_from_an_exported_model(tmp_path):
    """--init loads an exported model (architecture and weights): with lr 0 the run's weights
    stay exactly the exported ones; without --init they are a fresh random init."""
    from tded_train.export import export_model, import_model
    from tded_train.model import EncoderConfig, StreamEncoder, small_layers
    from tded_train.train import main
    torch.manual_seed(123)
    src = StreamEncoder(EncoderConfig(layers=small_layers(), phat_beta=0.25, column_norm=True))
    init = tmp_path / "init.safetensors"
    export_model(src, init)
    ref, header = import_model(init)
    assert header["phat_beta"] == 0.25
    d = write_folder(tmp_path, np.random.default_rng(2))
    common = ["--music", str(d), "--sim", "", "--batch", "2", "--epochs", "1", "--epoch-steps", "1",
              "--val-clips", "", "--log-every", "1", "--lr", "0", "--wd", "0"]
    main(["--out", str(tmp_path / "ft"), "--init", str(init)] + common)
    main(["--out", str(tmp_path / "scratch"), "--arch", "small"] + common)
    ft = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)
    scratch = torch.load(tmp_path / "scratch" / "last.pt", weights_only=True)
    assert ft["config"]["phat_beta"] == 0.25 and ft["provenance"]["init"] == "init.safetensors"
    for k, v in ref.state_dict().items():
        assert torch.equal(ft["model"][k], v), k
    assert any(not torch.equal(scratch["model"][k], v) for k, v in ref.state_dict().items())
