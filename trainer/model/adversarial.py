"""FGSM on the input embeddings: the worst-case L-inf perturbation of radius eps, to first order."""

from __future__ import annotations

from collections.abc import Callable

import torch


def fgsm_backward(
    loss_of: Callable[[torch.Tensor], torch.Tensor], shape: torch.Size, eps: float, real: torch.Tensor, weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-propagates loss + weight * (the loss at the perturbation) into the parameters' gradients, where
    perturbation = eps * sign(d loss / d embeddings) at real events; returns (clean loss, perturbation).
    The gradients accumulate into `.grad`: zero them first.

    The clean loss's one backward gives the parameters' gradients and the embeddings' together, so the adversarial
    term costs one forward and one backward more than a clean step (a separate autograd.grad costs a third backward).
    """
    delta = torch.zeros(shape, requires_grad=True)
    loss = loss_of(delta)
    loss.backward()
    assert delta.grad is not None
    perturbation = eps * delta.grad.sign() * real.unsqueeze(-1)
    (weight * loss_of(perturbation)).backward()
    return loss.detach(), perturbation
