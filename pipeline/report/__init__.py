"""Plots and the HTML report of a comparison (see pipeline.compare).

    write_plots(result, out_dir) -> dict[str, str]     PNG + SVG per layer
    write_report(result, out_dir, texts=None) -> Path  report.html (contains transcript text)
"""
from __future__ import annotations

from pipeline.report.html import render_report, write_report
from pipeline.report.plots import build_figures, write_plots

__all__ = ["build_figures", "render_report", "write_plots", "write_report"]
