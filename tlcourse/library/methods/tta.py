"""Test-time adaptation: adapt a trained source model on the unlabelled target batch it is asked to classify.

No source data and no target labels are available at test time; only the model and the batch.

* **Batch-norm adaptation** (Schneider et al., NeurIPS 2020; Li et al., "AdaBN", 2016): normalise with
  the statistics of the test batch instead of the running source statistics. A covariate shift that
  moves the mean and variance of the features is largely undone; no parameter changes.
* **TENT** (Wang et al., ICLR 2021): batch-norm adaptation plus a gradient step per batch on the
  **entropy** of the predictions, ``H(p) = - sum_k p_k log p_k``, with respect to the batch-norm affine
  parameters ``gamma, beta`` only (about 1% of the parameters): confident predictions on the target
  are, on shifted data, mostly correct ones. *Online*: the adapted parameters carry over from batch to
  batch. *Episodic*: reset to the source model before each batch.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tlcourse.library.modules import entropy_loss

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, _BATCH_NORMS)]


def use_batch_statistics(model: nn.Module) -> nn.Module:
    """Make every batch-norm layer normalise with the current batch's statistics, in train and eval mode.

    The running source statistics are dropped (as TENT's ``configure_model`` does), so the model is
    changed in place; pass a copy (`bn_adapted`) to keep the source model. Returns ``model``.
    """
    layers = batch_norm_layers(model)
    if not layers:
        raise ValueError("This model has no batch-norm layer to adapt: build it with build_classifier('bn_cnn').")
    for bn in layers:
        bn.track_running_stats = False
        bn.running_mean, bn.running_var = None, None
    return model


def bn_adapted(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that normalises each test batch with its own statistics (BN adaptation)."""
    return use_batch_statistics(copy.deepcopy(model)).eval()


def tent_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters TENT adapts: the affine ``weight`` (gamma) and ``bias`` (beta) of every batch norm."""
    params = []
    for bn in batch_norm_layers(model):
        if bn.affine:
            params += [bn.weight, bn.bias]
    return params


class Tent(nn.Module):
    """TENT: entropy minimisation of the batch-norm affine parameters, one step per test batch.

    ``tent(x)`` adapts on the batch ``x`` and returns its logits. Every other parameter is frozen
    (``requires_grad=False``); batch norms use the batch's statistics.

    Args:
        model: the trained source model; it is copied, never changed.
        lr: Adam's learning rate.
        steps: gradient steps per batch (the paper's 1).
        episodic: reset to the source model before every batch (otherwise: online, the adaptation
            accumulates over the stream of batches).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, steps: int = 1, episodic: bool = False) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.model = use_batch_statistics(copy.deepcopy(model))
        self.model.requires_grad_(False)
        self.params = tent_parameters(self.model)
        if not self.params:
            raise ValueError("TENT needs batch-norm layers with affine parameters (affine=True).")
        for p in self.params:
            p.requires_grad_(True)
        self.lr, self.steps, self.episodic = lr, steps, episodic
        self.optimizer = torch.optim.Adam(self.params, lr=lr)
        self._initial = (copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict()))

    def reset(self) -> None:
        """Back to the source model and a fresh optimizer."""
        self.model.load_state_dict(self._initial[0])
        self.optimizer.load_state_dict(self._initial[1])

    @torch.enable_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """``steps`` entropy-minimisation steps on batch ``x``, then its logits from the adapted model.

        (The reference code returns the logits of the forward pass *before* its one step, which makes
        one-step episodic TENT identical to batch-norm adaptation; predicting after the step lets the
        batch benefit from its own update.)
        """
        self.model.train()  # batch statistics either way; train mode for layers such as dropout
        for _ in range(self.steps):
            loss = entropy_loss(self.model(x))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.episodic:
            self.reset()
        return self.adapt(x)


def predict_stream(adapter: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of a test stream, fed to ``adapter`` (a model, a `bn_adapted` copy or a `Tent`) one batch at a time.

    The order is kept: online methods see the batches in the order given.
    """
    outputs = []
    for i in range(0, len(x), batch_size):
        out = adapter(x[i : i + batch_size])
        outputs.append(out.detach())
    return torch.cat(outputs)
