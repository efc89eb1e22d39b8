"""Baseline report: how well each handcrafted feature alone agrees with people.

For a human-rated database: SRCC and KRCC of each feature (signed so that 1 is perfect
agreement whatever the feature's direction), and PLCC and RMSE after the VQEG 5-parameter
logistic maps the feature onto the 0–100 scores. For a synthetic (unrated) set: the
signed SRCC of each feature against distortion severity within each distortion type, a
check that every feature moves the right way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.datasets import Dataset
from fusion.feature_table import FeatureTable
from fusion.metrics import evaluate, srcc

__all__ = ["BaselineRow", "format_markdown", "human_baselines", "published_srcc",
           "severity_baselines"]

# Our feature name -> the row of published_correlations.csv computing the same metric.
_PUBLISHED_NAMES = {"psnr": "psnr", "ssim": "ssim", "ms_ssim": "ms_ssim"}


@dataclass(frozen=True)
class BaselineRow:
    """One line of a baseline table."""

    database: str
    feature: str
    group: str
    n: int
    srcc: float
    krcc: float = math.nan
    plcc: float = math.nan
    rmse: float = math.nan
    published_srcc: float = math.nan


def human_baselines(dataset: Dataset, table: FeatureTable,
                    published: dict[str, float] | None = None) -> list[BaselineRow]:
    """SRCC / KRCC / PLCC / RMSE of each feature alone against the dataset's scores."""
    scores = dataset.scores
    usable = table.ok & np.isfinite(scores)
    if usable.sum() < 3:
        raise ValueError(f"{dataset.name}: fewer than 3 rated items with features")
    rows = []
    for column, (name, higher) in enumerate(zip(table.feature_names, table.higher_is_better,
                                                strict=True)):
        sign = -1.0 if higher is False else 1.0
        x = table.values[usable, column]
        metrics = evaluate(sign * x, scores[usable], logistic=5)
        rows.append(BaselineRow(
            dataset.name, name, "all", int(usable.sum()), metrics["srcc"], metrics["krcc"],
            metrics["plcc_logistic"], metrics["rmse_logistic"],
            (published or {}).get(name, math.nan),
        ))
    return rows


def severity_baselines(dataset: Dataset, table: FeatureTable) -> list[BaselineRow]:
    """Signed SRCC of each feature against −level within each distortion type."""
    levels = dataset.levels
    kinds = np.array([d or "" for d in dataset.distortions])
    rows = []
    for kind in sorted(set(kinds.tolist())):
        mask = (kinds == kind) & table.ok & np.isfinite(levels)
        if mask.sum() < 3:
            continue
        for column, (name, higher) in enumerate(zip(table.feature_names,
                                                    table.higher_is_better, strict=True)):
            sign = -1.0 if higher is False else 1.0
            value = srcc(sign * table.values[mask, column], -levels[mask])
            rows.append(BaselineRow(dataset.name, name, kind, int(mask.sum()), value))
    return rows


def published_srcc(path: str | Path, database: str) -> dict[str, float]:
    """Published SRCC per feature for ``database`` from published_correlations.csv.

    The file has one row per metric and a ``<db>(PLCC/SRCC/KRCC)`` column per database.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        column = next((i for i, h in enumerate(header)
                       if h.lower().startswith(database.lower() + "(")), None)
        if column is None:
            return {}
        by_metric = {row[0]: row[column] for row in reader if len(row) > column}
    result = {}
    for ours, theirs in _PUBLISHED_NAMES.items():
        if theirs in by_metric:
            result[ours] = float(by_metric[theirs].split("/")[1])
    return result


def format_markdown(rows: list[BaselineRow], *, severity: bool = False) -> str:
    """A Markdown table of baseline rows."""
    if severity:
        features = list(dict.fromkeys(r.feature for r in rows))
        groups = list(dict.fromkeys(r.group for r in rows))
        lookup = {(r.group, r.feature): r.srcc for r in rows}
        lines = ["| distortion | " + " | ".join(features) + " |",
                 "|---|" + "---:|" * len(features)]
        for group in groups:
            cells = [f"{lookup.get((group, f), math.nan):.3f}" for f in features]
            lines.append(f"| {group} | " + " | ".join(cells) + " |")
        means = [np.nanmean([lookup.get((g, f), math.nan) for g in groups]) for f in features]
        lines.append("| **mean** | " + " | ".join(f"**{m:.3f}**" for m in means) + " |")
        return "\n".join(lines)
    lines = ["| database | feature | n | SRCC | KRCC | PLCC (logistic) | RMSE (logistic) "
             "| published SRCC | Δ SRCC |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        published = "–" if math.isnan(r.published_srcc) else f"{r.published_srcc:.4f}"
        delta = "–" if math.isnan(r.published_srcc) else f"{r.srcc - r.published_srcc:+.4f}"
        lines.append(f"| {r.database} | {r.feature} | {r.n} | {r.srcc:.4f} | {r.krcc:.4f} | "
                     f"{r.plcc:.4f} | {r.rmse:.2f} | {published} | {delta} |")
    return "\n".join(lines)
