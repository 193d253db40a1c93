"""A tiny model config and a habitual synthetic data set, fitted once for the model, serving and CLI tests:
fits in seconds on one core."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.synthetic import habitual_frame
from trainer.data import from_frame
from trainer.model import ClickcastConfig, ClickcastRecommender


def tiny_config(**changes) -> ClickcastConfig:
    base = ClickcastConfig(
        max_len=12,
        hidden=16,
        layers=1,
        heads=2,
        dropout=0.0,
        stride=6,
        use_text=False,
        pretrain_epochs=1,
        finetune_epochs=4,
        patience=4,
        batch_size=16,
        eval_batch_size=64,
        lr=5e-3,
        threads=1,
        adversarial=False,
    )
    return base.replace(**changes)


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # Tiny models: more threads only add synchronisation, and other jobs share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def habits():
    return from_frame(habitual_frame(n_users=16, days=40))


@pytest.fixture(scope="session")
def fitted(habits) -> ClickcastRecommender:
    ck, split = habits
    rec = ClickcastRecommender(tiny_config())
    rec.fit(ck, split)
    return rec
