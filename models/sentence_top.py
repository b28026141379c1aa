"""The network as the int8 path exports it: the top encoder layer computes the sentence only.

`models.architecture.TaggerNet` pools the top layer's states over the sentence's tokens;
the context after the sentence informs them through attention in every layer. So in the
top layer the context tokens are needed only as keys and values: their queries, attention
outputs and feed-forward pass change nothing the heads see. Here the top layer computes
those for the first ``pool_mask.shape[1]`` tokens only, and the caller
(`models.onnx_int8.OnnxInt8Net`) narrows the pooling mask to the batch's longest sentence.
The same logits up to float rounding; on PriMock57 the context is 63% of the tokens the
model reads (35.4 per input, 13.2 of them the sentence's), and the int8 forward pass ran
1.04x faster (docs/performance.md, "This release, fourth step").

The layers are written out from the encoder's own modules (BERT-shaped encoders:
`models.int8_smoothing.bert_layers`), with the arithmetic of transformers' eager
attention. `sentence_top_net` checks the result against the network on an example and
gives None when they differ (an encoder whose embeddings or layers do more), so the
exporter then takes the network as it is.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from models.architecture import mean_pool
from models.int8_smoothing import bert_layers, input_scale
from models.labels import LAYER_NAMES

log = logging.getLogger(__name__)

#: the exported graph's outputs, in this order (as models.onnx_int8 names them)
OUTPUTS = LAYER_NAMES


def encoder_layer(layer: Any, states: torch.Tensor, blocked: torch.Tensor, queries: int | None = None) -> torch.Tensor:
    """One BERT layer (post-norm) on `states` [rows, tokens, hidden]; `blocked` is added to
    the attention scores (0 or the float minimum per key). With `queries`, only the first
    `queries` tokens are computed (every token still serves as key and value)."""
    attention = layer.attention.self
    scale = input_scale(attention)  # int8 smoothing, applied by a hook when the module itself is called
    keyed = states if scale is None else states * scale
    heads, width = attention.num_attention_heads, attention.attention_head_size
    kept = states if queries is None else states[:, :queries]

    def split(x: torch.Tensor) -> torch.Tensor:  # [rows, tokens, hidden] -> [rows, heads, tokens, width]
        return x.view(x.shape[0], x.shape[1], heads, width).transpose(1, 2)

    query = split(attention.query(keyed if queries is None else keyed[:, :queries]))
    key, value = split(attention.key(keyed)), split(attention.value(keyed))
    scores = torch.matmul(query, key.transpose(2, 3)) * width ** -0.5 + blocked
    context = torch.matmul(torch.softmax(scores, dim=-1), value).transpose(1, 2)
    context = context.reshape(context.shape[0], context.shape[1], heads * width)
    attended = layer.attention.output(context, kept)
    return layer.output(layer.intermediate(attended), attended)  # type: ignore[no-any-return]


class SentenceTopNet(nn.Module):
    """TaggerNet `net` whose top layer computes the first ``pool_mask.shape[1]`` tokens only;
    returns the logits as a tuple in `OUTPUTS` order (what the ONNX exporter takes)."""

    def __init__(self, net: Any, layers: list[Any]) -> None:
        super().__init__()
        self.net = net
        self._layers = layers  # modules of `net`, not registered twice

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor,
                pool_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        states = self.net.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        blocked = (1.0 - attention_mask[:, None, None, :].to(states.dtype)) * torch.finfo(states.dtype).min
        for layer in self._layers[:-1]:
            states = encoder_layer(layer, states, blocked)
        states = encoder_layer(self._layers[-1], states, blocked, queries=pool_mask.shape[1])
        logits = self.net.head_logits(mean_pool(states, pool_mask))
        return tuple(logits[name] for name in OUTPUTS)


def pooled_width(pool_mask: torch.Tensor) -> int:
    """How many leading tokens the top layer must compute for `pool_mask` [rows, tokens]:
    up to the last token any row pools over (the tagger's sentences come first in every
    row, so this is the longest sentence), and at least one."""
    pooled = torch.nonzero(pool_mask.any(0))
    return int(pooled.max()) + 1 if len(pooled) else 1


def sentence_top_net(net: Any, example: tuple[torch.Tensor, ...]) -> SentenceTopNet | None:
    """`SentenceTopNet` of TaggerNet `net` (eval mode) if, given `example` (input ids,
    attention mask, token types, pooling mask) with its pooling mask narrowed as
    `OnnxInt8Net` narrows it, it gives `net`'s logits, else None."""
    layers = bert_layers(net)
    if layers is None:
        return None
    top = SentenceTopNet(net, list(layers))
    input_ids, attention_mask, token_types, pool_mask = example
    narrowed = pool_mask[:, :pooled_width(pool_mask)]
    with torch.no_grad():
        expected = net(input_ids, attention_mask, token_types, pool_mask)
        try:
            got = top(input_ids, attention_mask, token_types, narrowed)
        except (RuntimeError, TypeError, AttributeError) as error:
            log.info("the top layer cannot be narrowed to the sentence for this encoder (%s)", type(error).__name__)
            return None
    if all(torch.allclose(expected[name], value, atol=1e-4) for name, value in zip(OUTPUTS, got)):
        return top
    log.info("the top layer cannot be narrowed to the sentence for this encoder (its logits differ)")
    return None
