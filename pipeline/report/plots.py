"""Plots of a ComparisonResult: matplotlib's object API (no pyplot, no global backend),
saved as PNG and SVG with fixed metadata so reruns give identical files."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from pipeline.atomic import write_bytes_atomic
from pipeline.compare.result import ComparisonResult, ShareRow

PLOTS = {"stance": "stance_by_group", "emotions": "emotions_by_group", "affect_focus": "affect_focus_by_group"}
_RC: Any = {"svg.hashsalt": "epistance", "svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}
_COLORS = ["#1f77b4", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
           "#17becf"]


def group_colors(result: ComparisonResult) -> dict[str, str]:
    return {g.group: _COLORS[i % len(_COLORS)] for i, g in enumerate(result.groups)}


def _rows(result: ComparisonResult, layer: str) -> list[ShareRow]:
    return [row for row in result.shares if row.layer == layer]


def _tick(result: ComparisonResult, group: str) -> str:
    summary = next(g for g in result.groups if g.group == group)
    mark = " (!)" if summary.small else ""
    return f"{group}\n{summary.n_speakers} spk{mark}"


def _speaker_panel(ax, result: ComparisonResult, layer: str, label: str, key: str) -> None:  # type: ignore[no-untyped-def]
    colors = group_colors(result)
    rows = {row.group: row for row in _rows(result, layer) if row.label == label}
    groups = [g.group for g in result.groups if g.group in rows]
    rng = np.random.default_rng(0)
    for x, group in enumerate(groups):
        speakers = [p for p in result.speakers if p.group == group and p.shares.get(key) is not None
                    and p.n_sentences.get(layer, 0) > 0]
        if speakers:
            values = np.array([p.shares[key] for p in speakers], dtype=float)
            sizes = np.array([p.n_sentences[layer] for p in speakers], dtype=float)
            jitter = rng.uniform(-0.18, 0.18, len(values))
            ax.scatter(x - 0.1 + jitter, values, s=8 + 40 * np.sqrt(sizes / sizes.max()), color=colors[group],
                       alpha=0.35, linewidths=0, zorder=1)
        row = rows[group]
        ax.errorbar([x + 0.22], [row.proportion], yerr=[[row.proportion - row.ci_low], [row.ci_high - row.proportion]],
                    fmt="o", color=colors[group], markeredgecolor="black", ecolor="black", capsize=3, ms=6, zorder=3)
        if row.proportion_acc is not None:
            ax.plot([x + 0.36], [row.proportion_acc], marker="D", mfc="white", mec=colors[group], ms=5, zorder=3,
                    linestyle="none")
    ax.set_xticks(range(len(groups)), [_tick(result, g) for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0, 1)
    ax.set_title(label.replace("_", " "))
    ax.grid(axis="y", alpha=0.3)


def _legend_note(fig: Figure, result: ComparisonResult) -> None:
    parts = ["dots: one per speaker (size ~ sentences)", "circle + bar: group share, 95% cluster-bootstrap interval"]
    if result.corrected:
        parts.append("hollow diamond: misclassification-corrected (ACC) share")
    if any(g.small for g in result.groups):
        parts.append(f"(!) fewer than {result.options.min_speakers} speakers")
    width_chars = int(fig.get_figwidth() * 17)
    fig.text(0.01, 0.01, "\n".join(textwrap.wrap("; ".join(parts), width_chars)), fontsize=7, color="#444444")


def stance_figure(result: ComparisonResult) -> Figure:
    labels = result.labels["stance"]
    fig = Figure(figsize=(max(7.5, 2.6 * len(labels) + 0.4 * len(result.groups) * len(labels)), 3.8),
                 layout="constrained")
    axes = fig.subplots(1, len(labels), sharey=True)
    for ax, label in zip(np.atleast_1d(axes), labels, strict=True):
        _speaker_panel(ax, result, "stance", label, f"stance_{label}")
    np.atleast_1d(axes)[0].set_ylabel("share of tagged sentences")
    fig.suptitle("Stance by group")
    _legend_note(fig, result)
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))  # type: ignore[union-attr,call-arg]
    return fig


def affect_figure(result: ComparisonResult) -> Figure:
    fig = Figure(figsize=(max(4.5, 1.2 * len(result.groups) + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    _speaker_panel(ax, result, "affect_focus", "affect_focus", "affect_focus")
    ax.set_title("")
    ax.set_ylabel("share of sentences focused on feelings")
    fig.suptitle("Affect focus by group")
    _legend_note(fig, result)
    fig.get_layout_engine().set(rect=(0, 0.1, 1, 0.9))  # type: ignore[union-attr,call-arg]
    return fig


def emotion_figure(result: ComparisonResult) -> Figure:
    labels = result.labels["emotions"]
    rows = _rows(result, "emotions")
    groups = [g.group for g in result.groups if any(r.group == g.group for r in rows)]
    colors = group_colors(result)
    fig = Figure(figsize=(max(7.5, 1.1 * len(labels) * max(1, len(groups)) * 0.45 + 3), 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(groups))
    top = 0.05
    for k, group in enumerate(groups):
        by_label = {r.label: r for r in rows if r.group == group}
        xs, ys, lo, hi = [], [], [], []
        for i, label in enumerate(labels):
            row = by_label.get(label)
            if row is None:
                continue
            xs.append(i - 0.4 + width * (k + 0.5))
            ys.append(row.proportion)
            lo.append(row.proportion - row.ci_low)
            hi.append(row.ci_high - row.proportion)
            top = max(top, row.ci_high)
        summary = next(g for g in result.groups if g.group == group)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", color=colors[group], capsize=2, ms=5,
                    label=f"{group} ({summary.n_speakers} spk){' (!)' if summary.small else ''}")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, min(1.0, top * 1.15))
    ax.set_ylabel("share of tagged sentences")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Emotion profile by group (multi-label: shares need not sum to 1)")
    fig.text(0.01, 0.01, "circle + bar: group share with 95% cluster-bootstrap interval", fontsize=7, color="#444444")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))  # type: ignore[union-attr,call-arg]
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format=fmt, dpi=150, metadata=metadata)
    return buffer.getvalue()


def build_figures(result: ComparisonResult) -> dict[str, Figure]:
    figures = {}
    with matplotlib.rc_context(_RC):
        if _rows(result, "stance"):
            figures["stance"] = stance_figure(result)
        if _rows(result, "emotions"):
            figures["emotions"] = emotion_figure(result)
        if _rows(result, "affect_focus"):
            figures["affect_focus"] = affect_figure(result)
    return figures


def write_plots(result: ComparisonResult, out_dir: Path) -> dict[str, str]:
    """`<layer>_by_group.png` and `.svg` for each layer with data; returns name -> path."""
    files = {}
    for layer, fig in build_figures(result).items():
        for fmt in ("png", "svg"):
            name = f"{PLOTS[layer]}.{fmt}"
            write_bytes_atomic(Path(out_dir) / name, figure_bytes(fig, fmt))
            files[name] = name
    return files
