"""The int8 precision: the tagger's network run by ONNX Runtime, its matrix products in int8.

At load the network is exported to ONNX (torch's TorchScript exporter, eager attention)
and its matrix-product weights are quantised to int8 *per output channel*, activations
quantised on the fly (`onnxruntime.quantization.quantize_dynamic`); ONNX Runtime's CPU
kernels then run it, with integer dot-product instructions (VNNI) where the CPU has them.
Per channel matters: with one scale per weight tensor (torch's dynamic quantisation, the
int8 path before) stance labels agreed with float32 on only 96.4% of PriMock57's sentences;
per channel on 98.8% (docs/performance.md). A model folder with an int8 calibration
(models/int8_smoothing.py) is smoothed before the export and its heads stay in float32,
which brings in-domain agreement to 99% and more. A BERT-shaped network is exported with its
top layer narrowed to the sentence's tokens (models/sentence_top.py: the context is read as
keys and values there, as pooling only needs the sentence). The export and the quantisation run in a
temporary folder (about 5-8 s), and the result is kept in an on-disk cache keyed by the
model folder's manifest (models/onnx_cache.py), so later loads of the same model skip them,
and the torch network itself (`load_int8`).

`OnnxInt8Net` stands in for `models.architecture.TaggerNet` where the tagger runs it
(`models.tagger.batched_logits`): same call, same logits. ONNX Runtime fixes a session's
threads when the session is made, so there is one session per thread count, chosen at
each call from torch's setting, which the tagger's `lanes` divide among parallel callers.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from models.artifact import (
    MANIFEST_FILE,
    LoadedModel,
    has_int8_calibration,
    load_model_dir,
    load_tokenizer,
    read_model_dir,
)
from models.errors import ModelError
from models.int8_smoothing import ALPHA, RANGES_FILE, smoothed_copy
from models.labels import AFFECT_FOCUS, EMOTIONS, LAYER_NAMES, STANCE, LabelSchema
from models.onnx_cache import cache_key, cached

INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pool_mask")
OUTPUTS = LAYER_NAMES  # the graph's outputs, in this order

log = logging.getLogger(__name__)

#: ONNX Runtime graph fusions left out when a session is made: its fused residual add and
#: layer norm (SkipLayerNormalization) ran slower on this project's CPU than the Add and
#: LayerNormalization it replaces (12.7% of the forward pass; unfused, they add 2.8%; the
#: whole pass about 10% faster without it: docs/performance.md, "Fusions left out")
DISABLED_FUSIONS = ("SkipLayerNormFusion",)

#: what the int8 model is made of besides the model folder: part of its cache key, so a
#: change to the export or the quantisation here must change this string
INT8_SCHEME = f"per-channel dynamic, smoothing alpha {ALPHA} with a calibration, heads float/1, sentence top"


def load_int8(folder: Path, expected_schema: LabelSchema | None = None) -> LoadedModel:
    """The model in `folder`, verified as `load_model_dir` verifies it, with its network run
    by ONNX Runtime in int8. When the int8 cache holds this model (its key is the folder's
    manifest, which pins every file the int8 model was made from) the torch network is never
    built: no modelling code imported, no weights read (about 2 s of every load). Otherwise
    the network is loaded, exported and quantised, and the result cached.
    A network that cannot be exported or quantised raises a ModelError saying so."""
    folder = Path(folder)
    spec, schema = read_model_dir(folder, expected_schema)
    if not has_int8_calibration(folder):
        log.warning("%s has no int8 calibration (%s): int8 runs unsmoothed, its labels differ more from "
                    "float32's (docs/performance.md)", spec.ref, RANGES_FILE)

    def quantised() -> bytes:
        loaded = load_model_dir(folder, expected_schema)  # verified again, the network checked too
        try:
            return quantised_model(loaded.net, loaded.int8_ranges)
        except Exception as error:  # the exporter and the quantiser raise many kinds
            raise ModelError(f"{spec.ref} cannot run in int8 ({type(error).__name__} while exporting or "
                             "quantising it); use precision bfloat16 or float32") from error

    model = cached(cache_key((folder / MANIFEST_FILE).read_bytes(), INT8_SCHEME), quantised)
    return LoadedModel(path=folder, spec=spec, schema=schema, net=OnnxInt8Net(schema, model),
                       tokenizer=load_tokenizer(folder))


def quantised_model(net: Any, ranges: dict[str, Any] | None = None) -> bytes:
    """The serialised int8 ONNX model of TaggerNet `net`; with `ranges` (an int8 calibration)
    smoothed first, and its heads left in float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if ranges is not None:
        net = smoothed_copy(net, ranges)
    with tempfile.TemporaryDirectory(prefix="epistance-onnx-") as folder:
        exported, quantised = Path(folder) / "float32.onnx", Path(folder) / "int8.onnx"
        export_onnx(net, exported)
        keep_float: list[str] = []
        if ranges is not None:
            # the heads export as Gemm, which the quantiser rewrites to "<name>_MatMul"
            heads = [node.name for node in onnx.load(str(exported)).graph.node if node.op_type == "Gemm"]
            keep_float = heads + [f"{name}_MatMul" for name in heads]
        hint = _DropPreprocessingHint()
        logging.getLogger().addFilter(hint)
        try:
            quantize_dynamic(exported, quantised, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_float,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            logging.getLogger().removeFilter(hint)
        return quantised.read_bytes()


class _DropPreprocessingHint(logging.Filter):
    """The quantiser advises, on the root logger, a pre-processing pass (shape inference,
    graph optimisation) before quantising; the agreement and speed in docs/performance.md
    were measured without it, on every load the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _with_tuple_outputs(net: Any) -> Any:
    """`net` returning its logits as a tuple: the exporter wants tensors, not a dict."""
    import torch

    class TupleOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any, pool_mask: Any) -> Any:
            logits = self.net(input_ids, attention_mask, token_type_ids, pool_mask)
            return tuple(logits[name] for name in OUTPUTS)

    return TupleOutputs()


def example_inputs(vocab_size: int) -> tuple[Any, ...]:
    """Three rows as the tagger makes them: a sentence, then context (token type 1), the
    last row padded; the pooling mask (the sentence) narrowed to the longest sentence."""
    import torch

    rows, width, sentences = 3, 16, (9, 5, 3)
    ids = torch.randint(1, vocab_size, (rows, width), generator=torch.Generator().manual_seed(0))
    positions = torch.arange(width)
    attention = (positions < torch.tensor([width, width, width - 4])[:, None]).long()
    sentence = (positions < torch.tensor(sentences)[:, None]).long()
    types = attention * (1 - sentence)
    return ids, attention, types, sentence[:, :max(sentences)]


def export_onnx(net: Any, path: Path) -> None:
    """Export TaggerNet `net` (float32, eval mode) to `path`, batch and length dynamic; for
    a BERT-shaped encoder, with its top layer narrowed to the sentence
    (`models.sentence_top`: the pooling mask's width is the number of tokens it computes)."""
    import warnings

    import torch

    from models.sentence_top import sentence_top_net

    config = net.encoder.config
    attention = getattr(config, "_attn_implementation", None)
    # eager attention exports as plain MatMul/Softmax, which the quantiser and ONNX
    # Runtime's own fusions handle; the fused scaled-dot-product op came out slower
    config._attn_implementation = "eager"
    example = example_inputs(int(config.vocab_size))
    dynamic = ({name: {0: "rows", 1: "tokens"} for name in INPUTS[:3]} | {"pool_mask": {0: "rows", 1: "pooled"}}
               | {name: {0: "rows"} for name in OUTPUTS})
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about constant branches of the mask code
            module = sentence_top_net(net, example) or _with_tuple_outputs(net)
            torch.onnx.export(module, example, str(path), dynamo=False, opset_version=17,
                              input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=dynamic)
    finally:
        config._attn_implementation = attention
        net.train(was_training)


@dataclasses.dataclass(frozen=True)
class _Head:
    out_features: int


class OnnxInt8Net:
    """Callable like TaggerNet (input ids, attention mask, token types, pooling mask ->
    logits per layer, as torch tensors), run by ONNX Runtime on the int8 model."""

    training = False  # never trained: batched_logits' eval()/train() calls change nothing
    #: rows padded to their exact length (batched_logits): ONNX Runtime keeps no per-shape
    #: kernel caches to bound, and the padding to steps of 8 cost about 9% of the forward pass
    #: (docs/performance.md: "This release", and "Exact widths in int8" for the labels)
    pad_multiple = 1

    def __init__(self, schema: LabelSchema, model: bytes) -> None:
        # batched_logits reads the output sizes from the heads, as TaggerNet has them
        sizes = {STANCE: len(schema.stance_labels), EMOTIONS: len(schema.emotion_labels), AFFECT_FOCUS: 1}
        self.heads = {name: _Head(size) for name, size in sizes.items()}
        self._model = model
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def eval(self) -> OnnxInt8Net:
        return self

    def train(self, mode: bool = True) -> OnnxInt8Net:
        return self

    def _session(self) -> Any:
        import onnxruntime
        import torch

        threads = torch.get_num_threads()  # TransformerTagger.lanes divides them among callers
        session = self._sessions.get(threads)  # every batch asks: no lock once it exists
        if session is not None:
            return session
        with self._lock:
            session = self._sessions.get(threads)
            if session is None:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                # idle threads sleep instead of spinning: spaCy shares the cores during a run
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = onnxruntime.InferenceSession(self._model, options, providers=["CPUExecutionProvider"],
                                                       disabled_optimizers=list(DISABLED_FUSIONS))
                self._sessions[threads] = session
            return session

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None,
                 pool_mask: Any = None) -> dict[str, Any]:
        import torch

        from models.sentence_top import pooled_width

        if pool_mask is None:  # what TaggerNet assumes: all sentence, pooled over the attention mask
            pool_mask = attention_mask
        # the graph's top layer computes as many tokens as the pooling mask is wide
        # (models.sentence_top): up to the last pooled one, the batch's longest sentence
        pool_mask = pool_mask[:, :pooled_width(pool_mask)]
        feed = {"input_ids": input_ids, "attention_mask": attention_mask,
                "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids),
                "pool_mask": pool_mask}
        outputs = self._session().run(list(OUTPUTS), {name: t.numpy() for name, t in feed.items()})
        return {name: torch.from_numpy(array) for name, array in zip(OUTPUTS, outputs)}
