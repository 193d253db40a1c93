"""Which history events weighed most in a prediction: gradient x input attribution.

For the top-scored item, |<d log p / d x_j, x_j>| per history position j (x_j its input embedding),
normalised to sum to 1 over the real events. It covers both paths, the softmax and the repeat path, because
both are computed from the encoder states of the history events. The top item is the served one (visit prior
included); the prior itself holds no embedding, so the weights say which events moved the network.
"""

from __future__ import annotations

import numpy as np
import torch

from trainer.data import PAD
from trainer.model.bundle import ClickcastModel
from trainer.model.inputs import Histories, history_codes, last_position_queries


def attribution(model: ClickcastModel, h: Histories, top: np.ndarray | None = None) -> np.ndarray:
    """float32 [B, L]: share of each history position in the top item's log-probability (0 at padding). `top`: the
    item each row's answer ranks first, when a scorer other than this torch network ranked them (Triton's graph,
    whose scores may differ within 1e-4 and so order a near-tie otherwise); by default the network's own."""
    net = model.net
    net.eval()
    codes = history_codes(h, model.cells, model.cfg)
    q = last_position_queries(h, model.cfg, model.item_lat, model.item_lon)
    delta = torch.zeros((*h.items.shape, model.cfg.hidden), requires_grad=True)
    top = model.log_probs(h).argmax(-1) if top is None else torch.from_numpy(np.asarray(top, dtype=np.int64))
    with torch.enable_grad():
        x, memory, states = net.encode(codes, causal=True, delta=delta)
        # The per-target path: the full distribution's -inf columns would turn the gradient into NaN.
        hq = states[q.rows, q.cols]
        log_p = net.next_item(memory, hq, codes["items"], q.rows, q.cols, q.pairs, q.item_dist, targets=top)
        (grad,) = torch.autograd.grad(log_p.sum(), delta)
    weight = (grad * x.detach()).sum(-1).abs() * torch.from_numpy(h.items != PAD)
    total = weight.sum(-1, keepdim=True)
    return torch.where(total > 0, weight / total.clamp_min(1e-12), 0.0).numpy().astype(np.float32)
