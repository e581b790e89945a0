"""Training checkpoints (``last.pt``, ``best.pt``): reading them back.

Written by ``train.py``; read by ``train.py`` (resume) and ``export.py`` (checkpoint ->
``.safetensors``). Kept apart from both so that neither imports the other.
"""
from __future__ import annotations

from typing import Tuple

import torch

from .model import EncoderConfig, StreamEncoder


def load_checkpoint(path) -> dict:
    """The checkpoint's dictionary, loaded with ``weights_only=True``: tensors, numbers, strings
    and plain containers only, never arbitrary pickled objects."""
    return torch.load(path, map_location="cpu", weights_only=True)


def objective_label(args: dict) -> str:
    """'stereocrw' (SSL only), 'supervised', or 'stereocrw+supervised' (informational header)."""
    ssl = args.get("w_ssl", 1.0) > 0
    sup = any(args.get(k, 0.0) > 0 for k in ("w_sup", "w_span", "w_reg"))
    return "+".join(([args["objective"]] if ssl else []) + (["supervised"] if sup else []))


def load_checkpoint_model(path) -> Tuple[StreamEncoder, dict]:
    """The checkpoint's model in eval mode, and ``{"objective", "provenance"}`` for export."""
    ck = load_checkpoint(path)
    model = StreamEncoder(EncoderConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, {"objective": objective_label(ck["args"]), "provenance": ck.get("provenance", {})}
