"""Export / import of the streaming encoder in the format of docs/encoder-spec.md.

One .safetensors file: ``layers.{i}.weight`` [out, in, k] and ``layers.{i}.bias`` [out]
(float32, BatchNorm folded), ``__metadata__["tded_model"]`` = JSON header,
``__metadata__["tded_data_sha256"]`` = SHA-256 (hex) of the tensor data (every byte after the
JSON header), checked by ``tded`` at load (a mismatch refuses the model).

    python3 -m tded_train.export CHECKPOINT.pt OUT.safetensors [--sidecar]
    python3 -m tded_train.export --add-checksum MODEL.safetensors   # stamp an older export
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
from pathlib import Path
from typing import Optional, Tuple

import torch
from safetensors.torch import load_file, save_file

from .checkpoint import load_checkpoint_model
from .model import EncoderConfig, StreamEncoder


def export_model(model: StreamEncoder, path, objective: str = "stereocrw",
                 training: Optional[dict] = None, sidecar: bool = False) -> dict:
    cfg = model.cfg
    header = cfg.header(objective=objective, training=training)
    tensors = {}
    for i, (W, b) in enumerate(model.folded_layers()):
        tensors[f"layers.{i}.weight"] = W.to(torch.float32).contiguous()
        tensors[f"layers.{i}.bias"] = b.to(torch.float32).contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"tded_model": json.dumps(header)})
    add_checksum(path)
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(header, indent=2) + "\n")
    return header


CHECKSUM_KEY = "tded_data_sha256"


class ModelFileError(ValueError):
    """A model file whose tensors disagree with its ``tded_model`` header (raised, not asserted,
    so the check also holds under ``python -O``)."""


def add_checksum(path) -> str:
    """Writes ``__metadata__["tded_data_sha256"]`` = SHA-256 of the tensor data into the file
    (the data bytes and tensor offsets are unchanged; only the JSON header is rewritten)."""
    path = Path(path)
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    data = b[8 + n:]
    digest = hashlib.sha256(data).hexdigest()
    header.setdefault("__metadata__", {})[CHECKSUM_KEY] = digest
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)  # the safetensors header is padded to 8 bytes with spaces
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + data)
    return digest


def read_header(path, key: str = "tded_model") -> dict:
    """The JSON header stored under ``__metadata__[key]`` of a ``.safetensors`` file (the
    encoder's ``tded_model``, or the learned pooling's ``tded_gccmask``)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    return json.loads(meta[key])


def import_model(path) -> Tuple[StreamEncoder, dict]:
    header = read_header(path)
    cfg = EncoderConfig.from_header(header)
    model = StreamEncoder(cfg)
    t = load_file(str(path))
    expected = {f"layers.{i}.{k}" for i in range(len(model.convs)) for k in ("weight", "bias")}
    if set(t) != expected:
        missing, extra = sorted(expected - set(t)), sorted(set(t) - expected)
        raise ModelFileError(f"{path}: tensors do not match the tded_model header"
                             f" (missing {missing}, unexpected {extra})")
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            W = t[f"layers.{i}.weight"]
            b = t[f"layers.{i}.bias"]
            if W.shape != conv.weight.shape or b.shape != conv.bias.shape:
                raise ModelFileError(f"{path}: layers.{i} has weight {tuple(W.shape)} and bias {tuple(b.shape)}, "
                                     f"the header says {tuple(conv.weight.shape)} and {tuple(conv.bias.shape)}")
            conv.weight.copy_(W)
            conv.bias.copy_(b)
    model.eval()
    return model, header


def main(argv=None):
    if argv is None:
        import sys
        argv = sys.argv[1:]
    if argv and argv[0] == "--add-checksum":
        for p in argv[1:]:
            print(f"{p}: {CHECKSUM_KEY} = {add_checksum(p)}")
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--sidecar", action="store_true", help="also write OUT.json")
    ap.add_argument("--note", default="", help="free-form provenance added to 'training'")
    a = ap.parse_args(argv)
    model, info = load_checkpoint_model(a.checkpoint)
    training = dict(info.get("provenance", {}))
    if a.note:
        training["note"] = a.note
    h = export_model(model, a.out, objective=info.get("objective", "stereocrw"),
                     training=training, sidecar=a.sidecar)
    print(json.dumps(h, indent=2))


if __name__ == "__main__":
    main()
