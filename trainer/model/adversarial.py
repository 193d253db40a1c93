"""FGSM on the input embeddings: the worst-case L-inf perturbation of radius eps, to first order."""

from __future__ import annotations

from collections.abc import Callable

import torch


def fgsm_delta(loss_of: Callable[[torch.Tensor], torch.Tensor], shape: torch.Size, eps: float, real: torch.Tensor):
    """(clean loss, perturbation) where perturbation = eps * sign(d loss / d embeddings) at real events.

    The clean loss keeps its graph, so the caller can back-propagate clean + adversarial losses together.
    """
    delta = torch.zeros(shape, requires_grad=True)
    loss = loss_of(delta)
    (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
    return loss, eps * grad.sign() * real.unsqueeze(-1)
