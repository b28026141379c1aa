"""The network: one shared transformer encoder, mean pooling, one linear head per layer.

An input may carry context after the sentence (``[CLS] sentence [SEP] context [SEP]``, the
context as token type 1); the pooled vector is the mean over the sentence part only, so
the context informs the sentence's token states through attention without being labelled
itself.

- stance: softmax over the schema's stance labels (single label);
- emotions: one sigmoid per emotion (multi-label; no emotion above threshold = neutral);
- affect_focus: one sigmoid.

The encoder is fine-tuned through LoRA adapters (peft) or fully. Losses are masked per
layer, so an example may carry any subset of layers and contributes nothing (no
gradient at all) to the layers it lacks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema

IGNORE = -100


def load_encoder(base_path: Path, encoder_config: Mapping[str, Any] | None = None) -> Any:
    """Load a pretrained encoder from a local folder: safetensors only, no remote code.

    ``encoder_config`` (a saved config.json as a dict) overrides the folder's config, so a
    trained model rebuilds exactly the architecture it was trained with.
    """
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars belong to the CLI
    kwargs: dict[str, Any] = {}
    if encoder_config is not None:
        settings = dict(encoder_config)
        kwargs["config"] = AutoConfig.for_model(settings.pop("model_type"), **settings)
    encoder = AutoModel.from_pretrained(
        str(base_path),
        use_safetensors=True,
        trust_remote_code=False,
        local_files_only=True,
        **kwargs,
    )
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: we mean-pool the token states
    return encoder


def num_layers(encoder: Any) -> int:
    return int(encoder.config.num_hidden_layers)


def add_lora(
    encoder: Any, r: int, alpha: float, dropout: float, targets: Sequence[str], layers_from: int = 0
) -> Any:
    """Wrap the encoder's linear layers named in ``targets`` with LoRA adapters
    (only in transformer layers ``layers_from`` and above)."""
    from peft import LoraConfig, get_peft_model

    layers = list(range(layers_from, num_layers(encoder))) if layers_from else None
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft hints int, takes any number
        lora_dropout=dropout,
        target_modules=list(targets),
        bias="none",
        layers_to_transform=layers, layers_pattern="layer" if layers else None,
    )
    return get_peft_model(encoder, config)


def freeze_below(encoder: Any, layers_from: int, freeze_word_embeddings: bool) -> None:
    """Full fine-tuning: freeze word embeddings (optional) and, when ``layers_from`` > 0,
    all embeddings and the transformer layers below ``layers_from``."""
    if freeze_word_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    if layers_from:
        for name, p in encoder.named_parameters():
            if name.startswith("embeddings."):
                p.requires_grad_(False)
        for layer in encoder.encoder.layer[:layers_from]:
            layer.requires_grad_(False)


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of `states` [rows, tokens, hidden] over the tokens `mask` marks (the first
    ``mask.shape[1]`` tokens of each row are the only ones it may mark)."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states[:, :mask.shape[1]] * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class TaggerNet(nn.Module):
    def __init__(self, encoder: Any, hidden_size: int, schema: LabelSchema, head_dropout: float = 0.1):
        super().__init__()
        self.encoder: Any = encoder
        self.dropout = nn.Dropout(head_dropout)
        self.heads = nn.ModuleDict(
            {
                STANCE: nn.Linear(hidden_size, len(schema.stance_labels)),
                EMOTIONS: nn.Linear(hidden_size, len(schema.emotion_labels)),
                AFFECT_FOCUS: nn.Linear(hidden_size, 1),
            }
        )

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             token_type_ids: torch.Tensor | None = None, pool_mask: torch.Tensor | None = None) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        return mean_pool(states, attention_mask if pool_mask is None else pool_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None,
                pool_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits per layer; ``pool_mask`` (default: ``attention_mask``) marks the sentence tokens."""
        return self.head_logits(self.pool(input_ids, attention_mask, token_type_ids, pool_mask))

    def head_logits(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per layer from the pooled sentence vectors."""
        pooled = self.dropout(pooled).float()
        return {
            STANCE: self.heads[STANCE](pooled),
            EMOTIONS: self.heads[EMOTIONS](pooled),
            AFFECT_FOCUS: self.heads[AFFECT_FOCUS](pooled).squeeze(-1),
        }


@dataclass
class Targets:
    """Per-batch targets; a ``*_mask`` says which rows carry that layer."""

    stance: torch.Tensor  # long [B], IGNORE where absent
    emotions: torch.Tensor  # float [B, E]
    emotions_mask: torch.Tensor  # bool [B]
    affect_focus: torch.Tensor  # float [B]
    affect_focus_mask: torch.Tensor  # bool [B]


def masked_losses(
    logits: Mapping[str, torch.Tensor],
    targets: Targets,
    affect_pos_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Mean loss per layer over the rows that carry it; a layer no row carries is left out.

    Leaving the layer out (rather than adding a zero) means its head gets no gradient.
    """
    losses: dict[str, torch.Tensor] = {}
    stance_rows = targets.stance != IGNORE
    if bool(stance_rows.any()):
        losses[STANCE] = F.cross_entropy(logits[STANCE][stance_rows], targets.stance[stance_rows])
    if bool(targets.emotions_mask.any()):
        rows = targets.emotions_mask
        losses[EMOTIONS] = F.binary_cross_entropy_with_logits(logits[EMOTIONS][rows], targets.emotions[rows])
    if bool(targets.affect_focus_mask.any()):
        rows = targets.affect_focus_mask
        weight = torch.tensor(affect_pos_weight, device=logits[AFFECT_FOCUS].device) if affect_pos_weight != 1.0 else None
        losses[AFFECT_FOCUS] = F.binary_cross_entropy_with_logits(
            logits[AFFECT_FOCUS][rows], targets.affect_focus[rows], pos_weight=weight
        )
    return losses


def trainable_state(net: TaggerNet) -> dict[str, torch.Tensor]:
    """The parameters that training changed (LoRA or unfrozen encoder weights, and heads)."""
    return {name: p.detach().clone() for name, p in net.named_parameters() if p.requires_grad}
