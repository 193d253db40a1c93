"""The run's outputs: metrics.json, a metrics table (printed and as markdown), training curves and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.metrics import METRICS


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> Path:
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2, sort_keys=False))
    return path


def table_rows(metrics: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(label, metric values) for the model, then baselines, then ablations."""
    rows = [("clickcast (model)", metrics["model"])]
    rows += [(f"{name} (baseline)", values) for name, values in metrics["baselines"].items()]
    rows += [(f"{name} (ablation)", values) for name, values in metrics.get("ablations", {}).items()]
    return rows


def markdown_table(metrics: dict[str, Any]) -> str:
    lines = ["| | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for label, values in table_rows(metrics):
        lines.append(f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in METRICS) + " |")
    return "\n".join(lines)


def text_table(metrics: dict[str, Any]) -> str:
    rows = table_rows(metrics)
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{m:>7}" for m in METRICS)]
    lines += [f"{label:{width}}  " + "  ".join(f"{values[m]:7.4f}" for m in METRICS) for label, values in rows]
    return "\n".join(lines)


def plot_curves(histories: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """One panel per curve (pre-training loss, training loss, validation metrics), one line per trained model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    curves = ("pretrain_loss", "train_loss", "val_acc@10", "val_mrr")
    keys = [k for k in curves if any(h.get(k) for h in histories.values())]
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(histories)}
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4.2 * max(len(keys), 1), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        for name, history in histories.items():
            values = history.get(key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, color=colors[name])
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[name], marker="o", markersize=3) for name in histories]
    fig.legend(handles, list(histories), loc="lower center", ncol=min(len(histories), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_metrics(metrics: dict[str, Any], path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per model / baseline / ablation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = table_rows(metrics)
    x = np.arange(len(METRICS))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(rows) + 4), 4.2))
    for i, (label, values) in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, [values[m] for m in METRICS], width, label=label)
    ax.set_xticks(x, METRICS)
    ax.set_ylabel("test score (full ranking)")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
