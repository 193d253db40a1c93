"""`clickcast train`: load the data, fit and score every baseline, the clickcast model, its ablations and the
robustness test in one run on one split, and write the report.

Protocol: settings (epochs, weights) are chosen on validation by a fit on the training events; the reported
scores come from a final fit with those settings on train + validation, scored on the untouched test events.

All models are scored on the same test events with the same full ranking (trainer.evaluate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from schemas.csv_source import ColumnMapping, read_events_frame
from trainer.baselines import all_baselines
from trainer.batches import HistoryBatch, UserIndex, history_batches
from trainer.data import Checkins, Split, data_stats, drop_duplicate_events, from_frame, require_next_events
from trainer.evaluate import EventRanks, history_length, rank_events
from trainer.metrics import METRICS
from trainer.progress import ProgressLog
from trainer.recommender import Recommender
from trainer.report import markdown_table, plot_curves, plot_gains, plot_metrics, text_table, write_metrics
from trainer.robustness import NOISE_FRACTION, noise_transform
from trainer.significance import gains_over

if TYPE_CHECKING:
    from trainer.model import ClickcastRecommender

NOISE_SEED = 0
QUICK_ROBUSTNESS_EVENTS = 2000  # quick runs test robustness on the first test events only


def variant(config: Any, preset: Any) -> Any:
    """`config` with whatever `preset` (e.g. ClickcastConfig.sasrec()) changes relative to the full defaults,
    so e.g. the SASRec baseline of a quick run uses the quick training budget."""
    reference = type(config).full().to_dict()
    return config.replace(**{k: v for k, v in preset.to_dict().items() if v != reference[k]})


def ablation_configs(config: Any) -> dict[str, Any]:
    """Each ablation turns one part of the model off. When the model itself is trained without adversarial
    training, the adversarial variant is trained instead, so the robustness test can compare the two."""
    configs = {}
    if config.pretrain_epochs > 0:
        configs["no_pretraining"] = config.replace(pretrain_epochs=0)
    if config.use_text:
        configs["no_text"] = config.replace(use_text=False)
    if config.adversarial:
        configs["no_adversarial"] = config.replace(adversarial=False)
    else:
        configs["with_adversarial"] = config.replace(adversarial=True)
    return {name: cfg.replace(name=f"clickcast_{name}") for name, cfg in configs.items()}


def inference_cost(
    score: Callable[[HistoryBatch], Any], ck: Checkins, split: Split, length: int, repeats: int = 20
) -> dict[str, float]:
    """Milliseconds per event of `score` on one CPU thread, at batch 1 and batch 64 (test histories)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        batch = next(history_batches(ck, split.test, length, 64))
        single = next(history_batches(ck, split.test, length, 1))
        cost = {}
        for label, b, n in (("batch_1", single, repeats), ("batch_64", batch, max(repeats // 4, 2))):
            score(b)  # warm-up
            started = time.perf_counter()
            for _ in range(n):
                score(b)
            cost[f"ms_per_event_{label}"] = 1000 * (time.perf_counter() - started) / (n * len(b))
        return cost
    finally:
        torch.set_num_threads(threads)


def served_inference_cost(rec: ClickcastRecommender, ck: Checkins, split: Split, log: ProgressLog) -> dict[str, Any]:
    """`inference_cost` of what Triton runs: the exported scoring graph (ONNX Runtime, one thread) with its top-k.
    A graph that cannot be exported is reported, not raised: it must not cost the run its metrics."""
    import tempfile

    from trainer.model.recommender import as_histories
    from trainer.serving.graph import GRAPH_FILE, GraphScorer, export_graph
    from trainer.serving.triton_config import DEFAULT_TOP_K

    model = rec.model
    assert model is not None, "measured after training"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / GRAPH_FILE
        try:
            export_graph(model, path, min(DEFAULT_TOP_K, model.n_answerable))
            scorer = GraphScorer(path, model)
            return inference_cost(lambda b: scorer.top_k(as_histories(b)), ck, split, history_length(rec))
        except Exception as exc:
            log.line(f"served inference cost not measured: {exc}")
            return {"error": str(exc)}


def relative_drop(clean: dict[str, float], noisy: dict[str, float]) -> dict[str, float]:
    return {m: (clean[m] - noisy[m]) / clean[m] if clean[m] else 0.0 for m in METRICS}


def only_metrics(result: dict[str, float]) -> dict[str, float]:
    return {m: result[m] for m in METRICS}


def run_training(
    data: str | Path,
    out_dir: str | Path,
    quick: bool = False,
    mapping: ColumnMapping | None = None,
    max_events: int | None = None,
    config: Any = None,
    log: ProgressLog | None = None,
    frame: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Train and score everything; returns (and writes to out_dir/metrics.json) the metrics.

    Every model and baseline is fit twice: on the training events, choosing its settings on validation (epochs,
    weights), then again with those settings on train + validation (the final fit) before scoring the test
    events; both test scores are reported ("train_only" holds the first). Ablations change one part of the
    final model and train with its epochs on train + validation directly.

    quick: the quick model config, one fit each (on the training events, settings chosen on validation; no
    final fit, to stay within the quick budget), no SASRec or ablations; robustness on the model alone, over
    the first QUICK_ROBUSTNESS_EVENTS test events. `config` overrides the model config (tests use a tiny one);
    `frame` is the already read `data`.
    """
    from trainer.model import ClickcastConfig, ClickcastRecommender

    log = log or ProgressLog()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, Any] = {"fit_s": {}, "score_s": {}}

    log.line(f"loading {data}")
    if frame is None:
        frame = read_events_frame(data, mapping, limit=max_events)
    frame, duplicates = drop_duplicate_events(frame)
    ck, split = from_frame(frame)
    require_next_events(ck, split.train)  # before any baseline is fit: the model would refuse the data last
    final_fit = not quick
    final_ck, final_split = from_frame(frame, final=True) if final_fit else (ck, split)
    index = UserIndex.build(ck.user, ck.n_users)
    stats = data_stats(ck, split)
    stats["path"] = str(data)
    stats["duplicates_dropped"] = duplicates
    final_stats = data_stats(final_ck, final_split) if final_fit else stats
    stats["final_items_known"] = final_stats["items_known"]
    stats["final_test_unk_share"] = final_stats["test_unk_share"]
    timings["load_s"] = time.perf_counter() - started
    log.line(
        f"{stats['events']} events, {stats['users']} users, {stats['items_known']} known items "
        f"({stats['final_items_known']} with validation); test {stats['test_events']} events "
        f"({100 * stats['final_test_unk_share']:.1f}% unseen items = misses); {duplicates} repeated rows dropped"
    )

    def timed_fit(rec: Recommender, ck: Checkins, split: Split) -> float:
        t0 = time.perf_counter()
        rec.fit(ck, split, progress=log.step())
        return time.perf_counter() - t0

    def scored(rec: Recommender, ck: Checkins, split: Split, stage: str) -> EventRanks:
        ranked = rank_events(rec, ck, split, "test", index=index, progress=log.step())
        result = ranked.metrics()
        log.line(f"{rec.name} ({stage}): " + "  ".join(f"{m} {result[m]:.4f}" for m in METRICS))
        return ranked

    train_only: dict[str, dict[str, float]] = {}
    histories: dict[str, dict[str, list[float]]] = {}

    def fit_and_score(rec: Recommender) -> EventRanks:
        """The fit on the training events (scored as train_only), then the final fit (scored)."""
        fitted = timed_fit(rec, ck, split)
        if hasattr(rec, "history"):
            histories[rec.name] = dict(rec.history)
        if final_fit:
            train_only[rec.name] = only_metrics(scored(rec, ck, split, "train only").metrics())
            fitted += timed_fit(rec, final_ck, final_split)
        ranked = scored(rec, final_ck, final_split, "final" if final_fit else "test")
        timings["fit_s"][rec.name] = fitted
        timings["score_s"][rec.name] = ranked.seconds
        return ranked

    ranks: dict[str, EventRanks] = {}  # the test ranks of each baseline and ablation, for the gains

    def keep(table: dict[str, dict[str, float]], name: str, ranked: EventRanks) -> dict[str, float]:
        """`ranked` filed for the gains, and its metrics in `table` (the baselines or the ablations)."""
        ranks[name] = ranked
        table[name] = only_metrics(ranked.metrics())
        return table[name]

    baselines: dict[str, dict[str, float]] = {}
    for rec in all_baselines(quick):
        keep(baselines, rec.name, fit_and_score(rec))

    model_config = config or (ClickcastConfig.quick() if quick else ClickcastConfig.full())
    model = ClickcastRecommender(model_config)
    model_ranks = fit_and_score(model)
    model_result = only_metrics(model_ranks.metrics())
    model.save(out / "model")
    timings["model_epochs"] = model.chosen_epochs

    ablations: dict[str, dict[str, float]] = {}
    trained = {model_config.adversarial: (model, model_result)}
    if not quick:
        sasrec = ClickcastRecommender(variant(model_config, ClickcastConfig.sasrec()))
        keep(baselines, sasrec.name, fit_and_score(sasrec))
        if model.config.use_visit_prior:
            keep(ablations, "no_visit_prior", scored(model.without_visit_prior(), final_ck, final_split, "final"))
        for name, cfg in ablation_configs(model.config).items():
            rec = ClickcastRecommender(cfg)
            rec.chosen_epochs = model.chosen_epochs
            timings["fit_s"][rec.name] = timed_fit(rec, final_ck, final_split)
            result = keep(ablations, name, scored(rec, final_ck, final_split, "final"))
            if cfg.adversarial != model_config.adversarial:
                trained[cfg.adversarial] = (rec, result)

    limit = QUICK_ROBUSTNESS_EVENTS if quick else None
    robustness: dict[str, Any] = {"noise_fraction": NOISE_FRACTION, "seed": NOISE_SEED}
    for adversarial, (rec, full_clean) in sorted(trained.items()):
        step = log.step("robustness")
        options = {"index": index, "limit": limit, "progress": step}
        clean = (
            full_clean
            if limit is None
            else only_metrics(rank_events(rec, final_ck, final_split, "test", **options).metrics())
        )
        transform = noise_transform(final_ck.vocab, NOISE_SEED)
        noisy_ranks = rank_events(rec, final_ck, final_split, "test", transform=transform, **options)
        noisy = only_metrics(noisy_ranks.metrics())
        robustness["events"] = len(noisy_ranks.ranks)
        robustness["adversarial" if adversarial else "standard"] = {
            "model": rec.name,
            "clean": clean,
            "noisy": noisy,
            "relative_drop": relative_drop(clean, noisy),
        }
        noise = f"{NOISE_FRACTION:.0%} noise events"
        log.line(f"robustness {rec.name}: acc@1 {clean['acc@1']:.4f} -> {noisy['acc@1']:.4f} with {noise}")

    strongest = strongest_baseline(baselines)[0]
    gains = gains_over(model_ranks, {name: ranks[name] for name in (strongest, *ablations)})

    timings["inference"] = inference_cost(model.score, final_ck, final_split, history_length(model))
    timings["inference_served"] = served_inference_cost(model, final_ck, final_split, log)
    timings["total_s"] = time.perf_counter() - started
    metrics = {
        "data": stats,
        "model": model_result,
        "baselines": baselines,
        "ablations": ablations,
        "robustness": robustness,
        "gains": gains,
        "train_only": train_only,
        "timings": timings,
        "config": {"quick": quick, "model": model.config.to_dict()},
    }
    write_metrics(out, metrics)
    (out / "metrics.md").write_text(markdown_table(metrics) + "\n")
    plot_curves(histories, out / "training_curves.png")
    plot_metrics(metrics, out / "metrics.png")
    plot_gains(metrics, out / "gains.png")
    log.line(f"done in {timings['total_s']:.0f}s; wrote {out / 'metrics.json'}")
    print(text_table(metrics))
    return metrics


def strongest_baseline(baselines: dict[str, dict[str, float]], metric: str = "mrr") -> tuple[str, float]:
    name = max(baselines, key=lambda b: baselines[b][metric])
    return name, float(baselines[name][metric])
