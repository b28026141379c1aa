"""report.html: the plots, tables, tests, example sentences and a methods paragraph in one
self-contained page. The only comparison output that contains transcript text."""
from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, select_autoescape

from pipeline import __version__
from pipeline.atomic import write_bytes_atomic
from pipeline.compare.result import ComparisonResult, InferenceRow
from pipeline.report.plots import PLOTS, build_figures, figure_bytes
from pipeline.report.template import REPORT_TEMPLATE

REPORT = "report.html"
TITLES = {
    "stance": ("Stance: what kind of knowledge?",
               ("Share of each group's sentences the model tags as drawing on objective (impersonal, "
               "institutional, expert) or experiential (lived, felt, witnessed) knowledge, or neither.")),
    "emotions": ("Emotions", ("Share of each group's sentences tagged with each emotion (a sentence may carry "
                             "several or none).")),
    "affect_focus": ("Affect focus: talking about feelings",
                     "Share of each group's sentences whose topic is feelings (the speaker's or someone else's)."),
}


def _pct(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"{_pct(low)} – {_pct(high)}"


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _odds(row: InferenceRow | None) -> str:
    if row is None or row.estimate is None:
        return "–"
    return f"{_num(row.estimate)} [{_num(row.ci_low)}, {_num(row.ci_high)}]"


def _section(result: ComparisonResult, layer: str, image: str | None) -> dict[str, object]:
    small = {g.group: g.small for g in result.groups}
    small_groups = {g.group: g.n_speakers for g in result.groups if g.small}
    shares = [{
        "group": r.group, "label": r.label, "proportion": _pct(r.proportion), "ci": _interval(r.ci_low, r.ci_high),
        "acc": _pct(r.proportion_acc), "acc_ci": _interval(r.acc_ci_low, r.acc_ci_high),
        "meanprob": _pct(r.proportion_meanprob), "speaker_mean": _pct(r.proportion_speaker_mean),
        "counts": f"{r.n_positive} / {r.n_sentences}", "n_speakers": r.n_speakers, "small": small.get(r.group),
    } for r in result.shares if r.layer == layer]
    omnibus = [{
        "label": t.label, "method": t.method, "statistic": _num(t.statistic), "df": t.df or "", "p": _p(t.p_value),
        "p_holm": _p(t.p_holm), "sig": t.p_holm is not None and t.p_holm < 0.05,
        "note": "; ".join(filter(None, [", ".join(t.groups_tested), t.note])),
    } for t in result.tests if t.layer == layer and t.test == "omnibus" and t.method != "cluster_bootstrap"]
    by_pair: dict[tuple[str, str, str], dict[str, InferenceRow]] = {}
    for t in result.tests:
        if t.layer == layer and t.test == "pairwise":
            by_pair.setdefault((t.label, t.group_a or "", t.group_b or ""), {})[t.method] = t
    pairs = []
    for (label, a, b), methods in by_pair.items():
        boot, gee, glmm = (methods.get(m) for m in ("cluster_bootstrap", "gee_exchangeable", "glmm_random_intercept"))
        diff = "–"
        if boot is not None and boot.estimate is not None:
            diff = f"{100 * boot.estimate:+.1f} pts [{100 * (boot.ci_low or 0):+.1f}, {100 * (boot.ci_high or 0):+.1f}]"
        notes = [f"† {g}: {small_groups[g]} speaker{'s' if small_groups[g] != 1 else ''}" for g in (a, b)
                 if g in small_groups]
        notes += sorted({n for row in (gee, glmm, boot) if row is not None and row.note
                         for n in row.note.split("; ") if not n.startswith(("between-speaker SD", "within-speaker correlation")) and "fewer" not in n})
        pairs.append({
            "label": label, "group_a": a, "group_b": b, "diff": diff,
            "boot_p": _p(boot.p_holm if boot else None), "boot_sig": bool(boot and boot.p_holm is not None
                                                                          and boot.p_holm < 0.05),
            "gee": _odds(gee), "gee_p": _p(gee.p_holm if gee else None),
            "gee_sig": bool(gee and gee.p_holm is not None and gee.p_holm < 0.05),
            "glmm": _odds(glmm), "glmm_p": _p(glmm.p_holm if glmm else None),
            "glmm_sig": bool(glmm and glmm.p_holm is not None and glmm.p_holm < 0.05), "note": "; ".join(notes),
        })
    title, question = TITLES[layer]
    caption = ("Dots: one per speaker (size grows with their sentences). Circle and bar: the group's share and its "
               "95% cluster-bootstrap interval.") if layer != "emotions" else \
        "Circle and bar: the group's share of sentences with each emotion and its 95% cluster-bootstrap interval."
    if result.corrected and layer != "emotions":
        caption += " Hollow diamond: the share corrected for the model's known errors (ACC)."
    small_note = (f"† small group (fewer than {result.options.min_speakers} speakers): GEE does not test it; the mixed "
                  "model borrows the between-speaker variance of the other groups; the bootstrap interval describes "
                  "these speakers only.") if small_groups else ""
    return {"layer": layer, "title": title, "question": question, "image": image, "caption": caption,
            "shares": shares, "omnibus": omnibus, "pairs": pairs, "small_note": small_note}


def _methods(result: ComparisonResult) -> list[str]:
    o = result.options
    unit = "speaker" if o.cluster == "speaker" else "transcript"
    selection = ", ".join(f"{k}={v}" for k, v in o.where.items()) or "none"
    roles = ("Interviewer sentences are excluded." if "role" not in o.where and not o.include_interviewers
             else "Roles as selected.")
    paragraphs = [
        (f"Labels come from the model {result.model or '(unknown: no manifest)'}; they are predictions, not human "
        f"codes. The unit of annotation is the sentence; sentences are grouped by {' × '.join(o.by)} "
        f"(filters: {selection}). {roles} A speaker is one speaker label in one transcript, or one person across "
        "transcripts where the metadata gives a `person` attribute. Sentences of one speaker are not independent "
        "(people have their own ways of talking), so every interval and test below treats the speaker, not the "
        "sentence, as the independent unit."),
        (f"Share: the group's tagged sentences carrying the label, over its tagged sentences (classify and count). "
        f"95% intervals are percentile intervals from a cluster bootstrap ({o.n_boot} replicates, seed {o.seed}) "
        f"that resamples whole {unit}s within groups, so a talkative {unit} cannot pass for many. Groups with fewer "
        f"than {o.min_speakers} {unit}s get a two-stage bootstrap ({unit}s, then their sentences), which describes "
        "those speakers only. Speaker mean: the average of per-speaker shares, each speaker counting once. Mean "
        "probability: the average model probability for the label, which does not depend on a 0.5 threshold."),
        ("ACC-corrected share: the raw share adjusted for the model's errors with its held-out confusion matrix "
         "(adjusted classify and count: solve the confusion system, clip to [0, 1], renormalise stance shares to "
         "sum 1). Its intervals carry this corpus's sampling uncertainty, not the uncertainty of the confusion "
         "matrix itself, and the correction assumes the model errs on this corpus as it did on its test set."
         if result.corrected else
         "No confusion matrix was given, so no misclassification-corrected shares: raw shares are biased towards "
         "the labels the model over-predicts."),
        (f"Tests, per label: (1) logistic GEE with one mean per group, exchangeable working correlation within "
        f"{unit}, bias-reduced (Mancl–DeRouen) sandwich covariance and F / t reference distributions with "
        f"({unit}s − groups) degrees of freedom; it gives population-averaged odds ratios and includes only groups "
        f"with at least {o.min_speakers} {unit}s and both outcomes present. (2) A random-intercept logistic mixed "
        "model fitted by maximum likelihood (adaptive Gauss–Hermite quadrature), giving odds ratios for a typical "
        "speaker; it assumes one between-speaker variance for all groups, which lets it include small groups, and "
        "its Wald tests ran somewhat liberal in simulations (about 8% false positives at the 5% level with 3–5 "
        "speakers per group). "
        "(3) The bootstrap difference in shares. P values are Holm-adjusted across the pairwise contrasts of each "
        "label and method, and across labels for the omnibus tests; bold marks Holm p < 0.05."),
        ("Caveats. In simulations with strong speaker effects and no true difference, a naive sentence-level test "
        "declares a difference about 40% of the time; the cluster bootstrap is close to 5% from about ten speakers "
        "per group but too liberal with three to five (about 20% and 10%); GEE with the bias-reduced covariance "
        "stayed at or below 5% throughout, which is why it is the primary test. With "
        "few speakers per group, who was interviewed matters more than how much they said: a difference shows what "
        "these speakers did, and generalising to a profession needs more speakers. A group with one speaker has no "
        "between-speaker variance estimate at all; its interval describes that person. Labels are model output; "
        "read the example sentences to see what the model counts."),
    ]
    small = [f"{g.group} ({g.n_speakers} speaker{'s' if g.n_speakers != 1 else ''})" for g in result.groups if g.small]
    if small:
        paragraphs.append(f"Small groups in this comparison (fewer than {o.min_speakers} {unit}s): "
                          + ", ".join(small) + ". Nothing here supports a claim about these groups in general.")
    return paragraphs


def _examples(result: ComparisonResult, texts: Mapping[str, str]) -> list[dict[str, object]]:
    blocks: dict[tuple[str, str], list[dict[str, object]]] = {}
    for ref in result.examples:
        blocks.setdefault((ref.layer, ref.label), []).append({
            "group": ref.group, "text": texts.get(ref.sentence_id, "(text not available)"),
            "probability": _num(ref.probability), "speaker": ref.speaker, "sentence_id": ref.sentence_id})
    return [{"title": f"{layer.replace('_', ' ')}: {label.replace('_', ' ')}", "rows": rows,
             "open": layer == "stance"} for (layer, label), rows in blocks.items()]


def _selection(result: ComparisonResult) -> str:
    o = result.options
    parts = [f"{k}={v}" for k, v in o.where.items()]
    if "role" not in o.where:
        parts.append("all roles" if o.include_interviewers else "interviewers excluded")
    return ", ".join(parts)


def render_report(result: ComparisonResult, texts: Mapping[str, str], svgs: Mapping[str, bytes]) -> str:
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = environment.from_string(REPORT_TEMPLATE)
    sections = []
    for layer in ("stance", "emotions", "affect_focus"):
        if not any(r.layer == layer for r in result.shares):
            continue
        svg = svgs.get(layer)
        image = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii") if svg else None
        sections.append(_section(result, layer, image))
    o = result.options
    return template.render(
        by_text=" × ".join(o.by), by=list(o.by), corpus_name=Path(result.corpus_dir).name,
        model=result.model or "unknown", n_sentences=result.n_sentences, n_speakers=result.n_speakers,
        groups=[g.model_dump() for g in result.groups], min_speakers=o.min_speakers,
        selection=_selection(result),
        options_hash=result.options_hash, warnings=result.warnings, notes=result.notes,
        sections=sections, corrected=result.corrected, examples=_examples(result, texts),
        methods=_methods(result), tables=sorted(n for n in result.files if n.endswith(".csv")), version=__version__,
    )


def write_report(result: ComparisonResult, out_dir: Path, texts: Mapping[str, str] | None = None) -> Path:
    """Write report.html into out_dir and return its path.

    `texts` maps sentence_id -> text for the example sentences; when None they are read
    from the corpus the result was computed on. Plots are taken from the SVG files in
    out_dir when present, else drawn.
    """
    out_dir = Path(out_dir)
    if texts is None:
        from pipeline.compare.corpus import read_corpus_table

        wanted = {ref.sentence_id for ref in result.examples}
        frame = read_corpus_table(Path(result.corpus_dir), prefer=result.options.prefer)
        frame = frame[frame["sentence_id"].isin(wanted)]
        texts = dict(zip(frame["sentence_id"], frame["text"], strict=True))
    svgs: dict[str, bytes] = {}
    missing = []
    for layer, stem in PLOTS.items():
        path = out_dir / f"{stem}.svg"
        if path.is_file():
            svgs[layer] = path.read_bytes()
        else:
            missing.append(layer)
    if missing:
        for layer, fig in build_figures(result).items():
            if layer in missing:
                svgs[layer] = figure_bytes(fig, "svg")
    path = out_dir / REPORT
    write_bytes_atomic(path, render_report(result, texts, svgs).encode("utf-8"))
    return path
