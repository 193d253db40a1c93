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


def gain_cell(gain: dict[str, float | None]) -> str:
    """`+10.9% (+8.6..+13.2)`: the relative gain and its interval, in percent."""
    if gain["gain"] is None or gain["low"] is None or gain["high"] is None:
        return "n/a"
    return f"{100 * gain['gain']:+.1f}% ({100 * gain['low']:+.1f}..{100 * gain['high']:+.1f})"


def gains_title(metrics: dict[str, Any]) -> str:
    gains = metrics["gains"]
    return (
        f"relative gain of clickcast ({gains['level']:.0%} interval over {gains['resamples']} resamples of "
        f"{gains['unit']}s)"
    )


def gain_rows(metrics: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(`over NAME`, a cell per metric) for the strongest baseline and each ablation; none in older reports."""
    over = metrics.get("gains", {}).get("over", {})
    return [(f"over {name}", [gain_cell(gain[m]) for m in METRICS]) for name, gain in over.items()]


def markdown_table(metrics: dict[str, Any]) -> str:
    header = ["| | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    lines = header + [
        f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in METRICS) + " |"
        for label, values in table_rows(metrics)
    ]
    gains = gain_rows(metrics)
    if gains:
        lines += ["", gains_title(metrics) + ":", "", *header]
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in gains]
    return "\n".join(lines)


def text_table(metrics: dict[str, Any]) -> str:
    rows = table_rows(metrics)
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{m:>7}" for m in METRICS)]
    lines += [f"{label:{width}}  " + "  ".join(f"{values[m]:7.4f}" for m in METRICS) for label, values in rows]
    gains = gain_rows(metrics)
    if gains:
        cell = max(len(c) for _, cells in gains for c in cells)
        width = max(len(label) for label, _ in gains)
        lines += ["", gains_title(metrics), f"{'':{width}}  " + "  ".join(f"{m:>{cell}}" for m in METRICS)]
        lines += [f"{label:{width}}  " + "  ".join(f"{c:>{cell}}" for c in cells) for label, cells in gains]
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


def plot_gains(metrics: dict[str, Any], path: Path) -> Path:
    """One panel per metric: the model's relative gain over each compared scorer, with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    over = metrics["gains"]["over"]
    names = list(over)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 0.5 * len(names) + 1.6), sharey=True)
    for ax, metric in zip(axes, METRICS, strict=True):
        for y, name in enumerate(names):
            gain = over[name][metric]
            if gain["gain"] is None:
                continue
            # The interval as a line, not error bars around the gain: a skewed bootstrap (or rounding) can leave the
            # gain just outside its percentile interval, which error bars cannot draw.
            color = f"C{y % 10}"
            ax.plot([100 * gain["low"], 100 * gain["high"]], [y, y], color=color, marker="|", markersize=8)
            ax.plot(100 * gain["gain"], y, "o", color=color)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(metric)
        ax.set_xlabel("gain, %")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), [f"over {name}" for name in names])
    axes[0].invert_yaxis()
    fig.suptitle(gains_title(metrics), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
