"""Smoothing for the int8 path: activation outliers moved into the weights (SmoothQuant).

The int8 path quantises each matrix product's input with one scale per batch. A few
channels of a BERT encoder's hidden states run far larger than the rest, so that one scale
is coarse for every other channel. Smoothing (Xiao et al. 2023, "SmoothQuant") divides
input channel j by s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha) and multiplies the weight's
column j by s_j: the same product in exact arithmetic, but an input that quantises with
less error. max|X_j| is measured once per model, in float32 on its training inputs, and
stored in the model folder (`RANGES_FILE`); the int8 path smooths a copy of the network
with them before quantising it (models/onnx_int8.py). alpha 0.9 and the four smoothed
inputs were chosen on dev (docs/performance.md); with them the int8 labels of the shipped
model agree with float32's on at least 99% of in-domain test sentences per layer.

Smoothed inputs per encoder layer: the attention's input (one scale shared by query, key
and value), the attention output's input (folded into the value projection: exact, as
attention is linear in the values), the feed-forward input and the feed-forward output's
input. The heads are left in float32.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RANGES_FILE = "int8_calibration.safetensors"
ALPHA = 0.9
#: inputs whose per-channel range is measured, per encoder layer
KINDS = ("attention_in", "attention_out_in", "ffn_in", "ffn_out_in")
#: GoEmotions training comments measured beside the in-domain training sentences
GOEMOTIONS_CALIBRATION_ITEMS = 2000


def bert_layers(net: Any) -> Sequence[Any] | None:
    """The encoder layers of TaggerNet `net` when they are BERT-shaped (BERT, MiniLM), else None."""
    layers = getattr(getattr(net.encoder, "encoder", None), "layer", None)
    if layers is None:
        return None
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "intermediate.dense", "output.dense")
    for layer in layers:
        names = dict(layer.named_modules())
        if not all(name in names for name in needed):
            return None
    return list(layers)


def _range_inputs(layer: Any) -> dict[str, Any]:
    """The module whose first input each kind is."""
    return {"attention_in": layer.attention.self, "attention_out_in": layer.attention.output.dense,
            "ffn_in": layer.intermediate.dense, "ffn_out_in": layer.output.dense}


def measure_input_ranges(net: Any, token_ids: Sequence[Sequence[int]], pad_id: int,
                         sentence_lengths: Sequence[int] | None = None) -> dict[str, Any]:
    """max |x| per channel at every smoothed input of float32 TaggerNet `net`, over `token_ids`
    (padding included: the quantiser sees it too). Keys ``layer.<i>.<kind>``; {} when the
    encoder is not BERT-shaped."""
    import torch

    from models.tagger import batched_logits

    layers = bert_layers(net)
    if layers is None:
        return {}
    ranges: dict[str, torch.Tensor] = {}

    def recorder(key: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs["hidden_states"]
            seen = x.detach().abs().reshape(-1, x.shape[-1]).amax(0).float()
            ranges[key] = torch.maximum(ranges[key], seen) if key in ranges else seen
        return hook

    hooks = [module.register_forward_pre_hook(recorder(f"layer.{i}.{kind}"), with_kwargs=True)
             for i, layer in enumerate(layers) for kind, module in _range_inputs(layer).items()]
    try:
        batched_logits(net, token_ids, pad_id, 64, sentence_lengths)
    finally:
        for hook in hooks:
            hook.remove()
    return {key: ranges[key].contiguous() for key in sorted(ranges)}


def check_ranges(net: Any, ranges: dict[str, Any], where: str) -> None:
    """Raise ValueError unless `ranges` has exactly the keys and shapes `net`'s layers need."""
    layers = bert_layers(net)
    if layers is None:
        raise ValueError(f"{where}: the encoder is not BERT-shaped, so it has no int8 calibration to use")
    expected = {f"layer.{i}.{kind}": int(module.in_features if kind != "attention_in" else module.query.in_features)
                for i, layer in enumerate(layers) for kind, module in _range_inputs(layer).items()}
    if set(ranges) != set(expected):
        raise ValueError(f"{where}: holds {len(ranges)} ranges, the network has {len(expected)} smoothed inputs")
    for key, width in expected.items():
        tensor = ranges[key]
        if tuple(tensor.shape) != (width,) or not bool((tensor >= 0).all()):
            raise ValueError(f"{where}: range {key} has shape {tuple(tensor.shape)} (expected ({width},), >= 0)")


def _scale(input_range: Any, weight_range: Any, alpha: float) -> Any:
    return (input_range.clamp(min=1e-5).pow(alpha) / weight_range.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)


_INPUT_SCALE = "int8_input_scale"


def _scale_input(module: Any, inverse: Any) -> None:
    """Multiply `module`'s first input by `inverse` (traced into the ONNX graph as one Mul)."""
    module.register_buffer(_INPUT_SCALE, inverse)

    def hook(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        scale = getattr(mod, _INPUT_SCALE)
        if args:
            return (args[0] * scale, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] * scale}

    module.register_forward_pre_hook(hook, with_kwargs=True)


def input_scale(module: Any) -> Any:
    """What `smoothed_copy` multiplies `module`'s first input by when the module is called
    (None: nothing); for code that uses the module's parts without calling it."""
    return getattr(module, _INPUT_SCALE, None)


def smoothed_copy(net: Any, ranges: dict[str, Any], alpha: float = ALPHA) -> Any:
    """A deep copy of float32 TaggerNet `net` with its layers' inputs smoothed by `ranges`:
    the same logits up to float rounding, for quantising (the original is left untouched)."""
    import torch

    check_ranges(net, ranges, "int8 calibration")
    net = copy.deepcopy(net)
    with torch.no_grad():
        for i, layer in enumerate(bert_layers(net) or ()):
            attention = layer.attention.self
            projections = (attention.query, attention.key, attention.value)
            weight_range = torch.stack([p.weight.abs().amax(0) for p in projections]).amax(0)
            s = _scale(ranges[f"layer.{i}.attention_in"], weight_range, alpha)
            for projection in projections:
                projection.weight.mul_(s)
            _scale_input(attention, 1.0 / s)

            dense = layer.attention.output.dense
            s = _scale(ranges[f"layer.{i}.attention_out_in"], dense.weight.abs().amax(0), alpha)
            dense.weight.mul_(s)
            attention.value.weight.div_(s[:, None])  # the values come out already divided by s
            attention.value.bias.div_(s)

            for kind, dense in (("ffn_in", layer.intermediate.dense), ("ffn_out_in", layer.output.dense)):
                s = _scale(ranges[f"layer.{i}.{kind}"], dense.weight.abs().amax(0), alpha)
                dense.weight.mul_(s)
                _scale_input(dense, 1.0 / s)
    return net


def save_ranges(ranges: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    # one metadata key only: safetensors writes metadata in hash-map order, which varies
    save_file(ranges, str(path), metadata={"format": "pt"})


def load_ranges(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))
