"""Hyper-parameters of the clickcast transformer and its plain SASRec-style variant."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClickcastConfig:
    name: str = "clickcast"
    # History events the model sees (the Triton input length L). 150 (stride 75) or 200 (stride 100) scored validation
    # MRR +.003 (NYC): within the spread between runs, for 10-30% more time an epoch.
    max_len: int = 100
    hidden: int = 64  # 96 scored the same validation MRR after 5 epochs (.392 against .391), ~15% slower
    # One layer scores as well as two on NYC (fit on training events, test Acc@1 / MRR .288 / .427 against .286 / .425)
    # and costs ~30% less model CPU a served event at batch 64.
    layers: int = 1
    heads: int = 2
    dropout: float = 0.2  # 0.3: the same validation MRR
    # Input encodings besides the item id; all off gives the SASRec-style baseline.
    use_time: bool = True  # gap to the previous event + hour of week
    use_geo: bool = True  # geohash cell + hop distance from the previous event
    use_text: bool = True  # category name through the packaged sentence encoder
    # The repeat path: a distribution over the history's items mixed with the softmax over all items.
    use_repeat: bool = True
    # The visit prior (trainer.model.visit_prior): chosen on validation after training when use_visit_prior.
    use_visit_prior: bool = True
    visit_prior_weight: float = 0.0
    visit_prior_tau_days: float = 30.0
    geohash_precision: int = 6
    n_gap_buckets: int = 32
    n_distance_buckets: int = 32
    pretrain_epochs: int = 3  # 15 (~5 s each) fitted training better, not validation (.392 against .391)
    mask_prob: float = 0.2
    # Validation MRR gains under 0.001 an epoch after ~8 epochs; the cap keeps full training within 30 minutes.
    finetune_epochs: int = 10
    patience: int = 2  # epochs without a better validation MRR before stopping
    # Windows overlap so that every target after a user's first window keeps >= max_len - stride events of context.
    stride: int = 50
    every_position: bool = False  # train targets in window overlaps twice (see training_set)
    # Windows an epoch trains on, drawn at random anew each epoch (0 = all): bounds a quick fit's time on large files.
    epoch_windows: int = 0
    # FGSM on the input embeddings: chosen on validation (best val MRR 0.39 vs 0.385 without); it also regularises.
    adversarial: bool = True
    adv_eps: float = 0.05  # L-inf radius of the FGSM perturbation of the input embeddings (0.1: same validation MRR)
    adv_weight: float = 0.5
    # Validation MRR after 1 / 3 / 5 fine-tuning epochs: .377 / .387 / .391 at 4e-3 against .372 / .385 / .389 at
    # 2e-3 (NYC, fit on training events); at 2e-3 it was still rising at the 10-epoch cap, at 4e-3 it peaks at epoch 7.
    # A cosine decay from 2e-3 over 5 epochs scored lower (.385).
    lr: float = 4e-3
    weight_decay: float = 0.01
    batch_size: int = 64
    eval_batch_size: int = 256
    val_events: int = 0  # validate on the first N validation events (0 = all)
    seed: int = 0
    threads: int = 2

    @classmethod
    def full(cls) -> ClickcastConfig:
        return cls()

    @classmethod
    def quick(cls) -> ClickcastConfig:
        # Same history length as the full model: the Triton input shape does not depend on how it was trained.
        # 2,500 windows an epoch (NYC has 2,077): a quick run on a file three times NYC's size took 86 s, 149 without.
        return cls(
            pretrain_epochs=1, finetune_epochs=2, patience=1, val_events=2000, adversarial=False, epoch_windows=2500
        )

    @classmethod
    def sasrec(cls) -> ClickcastConfig:
        return cls(
            name="sasrec",
            layers=2,  # the published SASRec's depth
            use_time=False,
            use_geo=False,
            use_text=False,
            use_repeat=False,
            use_visit_prior=False,
            pretrain_epochs=0,
            adversarial=False,
        )

    def replace(self, **changes: Any) -> ClickcastConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ClickcastConfig:
        if not isinstance(values, dict):
            raise ValueError(f"a model config is a JSON object, not {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
