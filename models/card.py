"""MODEL_CARD.md, generated from the training run (config, schema, data counts, metrics).

Only figures and label names go in: no sentence from any data set is ever written here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.artifact import TaggerSpec
from models.config import TrainConfig
from models.labels import LabelSchema

#: One-line definitions from data/annotation/CODEBOOK.md for schema v1.
DEFINITIONS: dict[str, dict[str, str]] = {
    "stance": {
        "objective": "knowledge presented as impersonal, general, checkable or grounded in expertise, "
        "research, guidelines or institutions",
        "experiential": "knowledge grounded in lived, felt or personally witnessed experience "
        "(the speaker's or someone else's reported as lived)",
        "none": "no knowledge claim: backchannels, questions, interview management, pure evaluations, fragments",
    },
    "emotions": {
        "anger": "annoyance, frustration, irritation, indignation, heated disapproval",
        "disgust": "revulsion, contempt, moral distaste",
        "fear": "worry, nervousness, anxiety, dread",
        "joy": "happiness, pride, relief, gratitude, amusement, love, optimism, admiration",
        "sadness": "grief, disappointment, hurt, loneliness, remorse, hopelessness",
        "surprise": "astonishment, realisation, confusion, curiosity expressed as surprise",
    },
    "affect_focus": {
        "yes": "the sentence is about emotions, emotional states or emotional work (anyone's)",
    },
}


def _f(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else ("-" if x is None else str(x))


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return out


def _matrix(cm: dict[str, Any]) -> list[str]:
    labels = cm["labels"]
    lines = [f"rows: {cm['rows']}; columns: {cm['columns']}" + (f"; n = {cm['n']}" if "n" in cm else ""), ""]
    lines += _table(["gold \\ predicted", *labels], [[lab, *row] for lab, row in zip(labels, cm["matrix"])])
    return lines


def metrics_section(title: str, m: dict[str, Any]) -> list[str]:
    """Markdown for one evaluation set (as produced by models.evaluate.compute_metrics)."""
    lines = [f"### {title} (n = {m['n']})", ""]
    if "stance" in m:
        s = m["stance"]
        lines += [(f"**Stance** (n = {s['n']}): macro-F1 {_f(s['macro_f1'])}, accuracy {_f(s['accuracy'])}, "
                  f"ECE {_f(s['ece'])}"), ""]
        lines += _table(["class", "precision", "recall", "F1", "support"],
                        [[k, *(s["per_class"][k][f] for f in ("precision", "recall", "f1", "support"))]
                         for k in s["confusion_matrix"]["labels"]])
        lines += [""] + _matrix(s["confusion_matrix"]) + [""]
    if "emotions" in m:
        e = m["emotions"]
        lines += [(f"**Emotions** (n = {e['n']}): macro-F1 over 7 classes incl. neutral {_f(e['macro_f1_7'])}; "
                  f"macro-F1 over the 6 emotions {_f(e['macro_f1_6'])}; micro-F1 (6) {_f(e['micro_f1_6'])}; "
                  f"exact match {_f(e['exact_match'])}; ECE (per label) {_f(e['ece'])}"), ""]
        lines += _table(["class", "precision", "recall", "F1", "support"],
                        [[k, *(e["per_class"][k][f] for f in ("precision", "recall", "f1", "support"))]
                         for k in e["confusion_matrix_single_label"]["labels"]])
        lines += [""] + _matrix(e["confusion_matrix_single_label"]) + [""]
    if "affect_focus" in m:
        a = m["affect_focus"]
        c = a["confusion"]
        lines += [(f"**affect_focus** (n = {a['n']}, positives {a['support']}): F1 {_f(a['f1'])}, "
                  f"precision {_f(a['precision'])}, recall {_f(a['recall'])}, accuracy {_f(a['accuracy'])}, "
                  f"ECE {_f(a['ece'])}; confusion tn {c['tn']}, fp {c['fp']}, fn {c['fn']}, tp {c['tp']}"), ""]
    for key in ("speaker", "source"):
        groups = m.get(f"by_{key}")
        if not groups:
            continue
        lines += [f"By {key} (macro-F1 over the classes present in each group):", ""]
        lines += _table(
            [key, "n", "stance acc.", "stance macro-F1", "emotions macro-F1 (7)", "affect_focus F1 (pos.)"],
            [[g, v["n"], v.get("stance_accuracy"), v.get("stance_macro_f1_present"),
              v.get("emotions_macro_f1_7_present"),
              f"{_f(v.get('affect_focus_f1'))} ({v.get('affect_focus_support', '-')})"] for g, v in groups.items()],
        )
        lines.append("")
    return lines


def render_model_card(spec: TaggerSpec, config: TrainConfig, schema: LabelSchema, metrics: dict[str, Any]) -> str:
    c = metrics["data"]
    cal = metrics["calibration"]
    tr = metrics["training"]
    m = config.model
    layers = int(spec.encoder_config.get("num_hidden_layers", 0))
    scope = (f"transformer layers {m.train_layers_from}-{layers - 1} of 0-{layers - 1}"
             if m.train_layers_from else "all transformer layers")
    if spec.finetune == "lora":
        adapter = (f"LoRA adapters (r = {spec.lora_r}, alpha = {spec.lora_alpha}, on "
                   f"{', '.join(spec.lora_targets or [])}) in {scope}")
    else:
        frozen = "embeddings and lower layers frozen" if m.train_layers_from else (
            "word embeddings frozen" if m.freeze_word_embeddings else "nothing frozen")
        adapter = f"full fine-tuning of {scope} ({frozen}); trained weights stored as {m.store_dtype}"
    n_gold = c["gold_train"] + c["gold_dev"] + c["gold_test"]
    lines = [
        f"# Model card: {spec.ref}",
        "",
        "Generated from the training run; figures are measured, not estimated.",
        "",
        "## Intended use",
        "",
        ("Research on discourse in interviews: tagging each sentence's epistemic stance, expressed emotions and "
        "whether it is about feelings, so that groups of speakers can be compared in aggregate. It is **not** for "
        "clinical decisions, diagnosis, risk assessment or judging any individual; single predictions are noisy "
        "(see the metrics) and should be read as counts over many sentences, with human review of examples."),
        "",
        "## Model",
        "",
        (f"- Base encoder: `{spec.base_model}` (sentence-transformers/all-MiniLM-L6-v2 for the default; "
        f"weights sha256 `{spec.base_sha256}`, verified on every load; Apache-2.0, see models/THIRD_PARTY.md)."),
        (f"- Fine-tuning: {adapter}; mean pooling; one linear head per layer (stance softmax, 6 emotion sigmoids, "
        "1 affect_focus sigmoid), trained jointly with masked losses."),
        (f"- Input: one sentence followed by the last {spec.context_tokens} tokens of the talk before it (the "
         "previous turn and its own turn up to the sentence), pooled over the sentence only; at most "
         f"{spec.max_length} tokens (longer sentences are scored in overlapping windows, without context)."
         if spec.context_tokens else
         f"- Input: one sentence, at most {spec.max_length} tokens (longer sentences are scored in overlapping "
         "windows)."),
        (f"- Label schema: {schema.ref} (copied in label_schema.toml). Training config fingerprint: "
        f"{config.fingerprint}."),
        "",
        "## Labels",
        "",
    ]
    for layer, spec_layer in schema.layers.items():
        lines.append(f"- **{layer}** ({spec_layer.kind}):")
        for label in spec_layer.labels:
            lines.append(f"  - `{label}`: {DEFINITIONS.get(layer, {}).get(label, 'see the codebook')}")
        if spec_layer.kind == "multi":
            lines.append("  - no label above its threshold = neutral.")
    lines += [
        "",
        "Full definitions and decision rules: data/annotation/CODEBOOK.md.",
        "",
        "## Training data",
        "",
        f"- In-domain gold sentences annotated by the codebook (`{config.data.gold.as_posix()}`; see "
        f"data/annotation/DATA_STATEMENT.md), split by transcript: {c['gold_train']} train, {c['gold_dev']} dev, "
        f"{c['gold_test']} test. By source (train/dev/test): " + "; ".join(
            f"{src} {c.get(f'gold_train_source={src}', 0)}/{c.get(f'gold_dev_source={src}', 0)}/"
            f"{c.get(f'gold_test_source={src}', 0)}"
            for src in sorted({k.split('source=', 1)[1] for k in c if 'source=' in k})
        ) + ".",
        (f"- GoEmotions (Ekman grouping, Apache-2.0) train: {c['goemotions_train_used']} comments "
        f"(items also in the gold file excluded), emotions only; dev: {c['goemotions_dev']} for thresholds "
        f"({config.data.goemotions_dev_max or 'all'} of them watched for early stopping); test: "
        f"{c['goemotions_test']} for final evaluation only."),
        (f"- In-domain share of each batch: {config.data.indomain_share}; batch size {config.optim.batch_size}; "
        f"best step {tr['best_step']} of {tr['last_step']} run (max {config.optim.max_steps}); seed {config.seed}."),
        "",
        "## Calibration (on dev)",
        "",
        f"- Stance temperature: {cal['stance_temperature']:.3f}.",
        "- Emotion thresholds: " + ", ".join(f"{k} {v:.2f}" for k, v in cal["emotion_thresholds"].items()) + ".",
        f"- affect_focus threshold: {cal['affect_focus_threshold']:.2f}.",
        ("- Stance probabilities are temperature-scaled; emotion and affect_focus probabilities are the raw "
        "sigmoids (only their decision thresholds are tuned). Expected calibration error (ECE, 10 bins) is "
        "reported per layer below."),
        "",
        "## Metrics",
        "",
    ]
    test = metrics.get("test", {})
    if "indomain" in test:
        lines += metrics_section("In-domain test split (held out by transcript)", test["indomain"])
    if "goemotions" in test:
        lines += metrics_section("GoEmotions Ekman test (public benchmark)", test["goemotions"])
    lines += metrics_section("In-domain dev split (used for early stopping and calibration)",
                             metrics["dev"]["indomain"])
    lines += [
        "## Limitations",
        "",
        (f"- The in-domain gold set is small ({n_gold} sentences, {c['gold_test']} in test) and not real clinical "
        "interview data (see the data statement: fictional research interviews, role-played consultations, short "
        "written texts); per-class and per-group figures rest on few examples and have wide uncertainty."),
        ("- Labels come from one annotation pass (a double-labelled sample and adjudication aside) by non-expert "
        "annotators; the model cannot be more reliable than they are."),
        ("- Emotions are learnt mostly from Reddit comments; in interview talk most sentences are neutral and the "
        "rare emotions (disgust, surprise) have a handful of in-domain examples, so per-emotion figures in-domain "
        "are weak; their thresholds are tuned on a dev set dominated by GoEmotions."),
        ("- The base encoder was pretrained (contrastively) on Reddit comments among other data; it may have seen "
        "GoEmotions texts, never their labels."),
        ("- The model reads the end of the talk before each sentence, as the annotators did; given no context it "
         "scores lower (docs/model.md), so pass it (`epistance annotate` always does)."
         if spec.context_tokens else
         "- Each sentence is read alone: the context the annotators saw (the turn and the turn before) is not "
         "given to the model, so short replies ('Yes, exactly that.') are hard."),
        "- English only. Outputs are not validated for any clinical purpose.",
        "",
    ]
    return "\n".join(lines)


def refresh_model_card(folder: Path) -> Path:
    """Re-render MODEL_CARD.md of an existing model directory from its own tagger.json,
    train_config.toml, label_schema.toml and metrics.json, then rewrite its manifest.

    For card wording changes only: every figure comes from the stored metrics.
    """
    from models.artifact import (
        CARD_FILE,
        CONFIG_FILE,
        METRICS_FILE,
        SCHEMA_FILE,
        read_spec,
        verify_model_dir,
        write_manifest,
    )
    from models.config import load_train_config
    from models.labels import load_label_schema

    verify_model_dir(folder)
    text = render_model_card(
        read_spec(folder),
        load_train_config(folder / CONFIG_FILE),
        load_label_schema(folder / SCHEMA_FILE),
        json.loads((folder / METRICS_FILE).read_text()),
    )
    (folder / CARD_FILE).write_text(text)
    write_manifest(folder)
    return folder / CARD_FILE
