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
* **TTT**, test-time training (Sun et al., ICML 2020): train on the source with a self-supervised task
  beside the labels (predicting by how many quarter turns an image was rotated), on a shared feature
  extractor (`TTT`). At test time the rotation task needs no label, so each test image gets a few
  gradient steps of the extractor on its own rotation loss before it is classified
  (`TTTAdapter`): the features move towards what works for this image, and the label predictor,
  untouched, reads them. It adapts on one image, with no batch statistics at all.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from tlcourse.library.methods.base import Method
from tlcourse.library.models import FeatureClassifier
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
    """Logits of a test stream, fed to ``adapter`` (a model, a `bn_adapted` copy, a `Tent` or a
    `TTTAdapter`) one batch at a time.

    The order is kept: online methods see the batches in the order given.
    """
    outputs = []
    for i in range(0, len(x), batch_size):
        out = adapter(x[i : i + batch_size])
        outputs.append(out.detach())
    return torch.cat(outputs)


# ------------------------------------------------------------------------------ test-time training (TTT)
def rotate_batch(x: torch.Tensor, quarter_turns: torch.Tensor | int) -> torch.Tensor:
    """Images rotated counter-clockwise by ``quarter_turns`` times 90 degrees, exactly (no interpolation).

    Args:
        x: ``(N, C, H, W)`` square images (``H == W``, so that every rotation keeps the shape).
        quarter_turns: one int for the whole batch, or ``(N,)`` ints, one per image (taken modulo 4).

    Returns:
        ``(N, C, H, W)``, a new tensor.
    """
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"rotate_batch needs square images (N, C, H, W) with H == W, got {tuple(x.shape)}.")
    if isinstance(quarter_turns, int):
        return torch.rot90(x, quarter_turns, dims=(2, 3))
    if quarter_turns.shape != (len(x),):
        raise ValueError(f"quarter_turns must be an int or have shape ({len(x)},), got {tuple(quarter_turns.shape)}.")
    quarter_turns = quarter_turns % 4  # a turn of -1 is one of 3, and so on
    out = x.clone()
    for k in range(1, 4):
        chosen = quarter_turns == k
        out[chosen] = torch.rot90(x[chosen], k, dims=(2, 3))
    return out


def all_rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image in its four rotations, and the rotation labels: ``(4N, C, H, W)`` and ``(4N,)``.

    Rows ``kN .. (k+1)N - 1`` are the batch turned by ``k`` quarter turns, labelled ``k`` (0, 90, 180,
    270 degrees).
    """
    images = torch.cat([rotate_batch(x, k) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return images, labels


class TTT(Method):
    """Joint training for test-time training (Sun et al., ICML 2020): labels and rotations, one extractor.

    ``L = CE(G_y(G_f(x_s)), y_s) + w_rot * CE(G_r(G_f(rot(x_s, r))), r)``, with ``r`` a random quarter
    turn per image and ``G_r`` the rotation head (``num_features -> 4``). The target batch is not used:
    TTT adapts at test time, with `adapter` (a `TTTAdapter` on copies of the trained networks).
    `predict` is the jointly trained classifier without any test-time step (the paper's "joint training"
    baseline). The paper's extractor is the shared first half of a ResNet, the rest being two branches;
    here the shared part is the model's whole ``features``, and the branches are ``head`` and ``G_r``.

    Args:
        model: the classifier, split into ``features`` (``G_f``, shared) and ``head`` (``G_y``).
        lr: Adam's learning rate.
        rotation_weight: ``w_rot`` (the paper's 1).
        seed: seeds the draw of the rotations (a generator of the method's own).
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3, rotation_weight: float = 1.0, seed: int = 0) -> None:
        super().__init__(model, lr)
        self.rotation_head = nn.Linear(model.num_features, 4)
        self.rotation_weight = float(rotation_weight)
        self.generator = torch.Generator().manual_seed(seed)
        self.make_optimizer()

    def update(self, source_x, source_y, target_x, progress):
        features = self.model.features(source_x)
        class_loss = F.cross_entropy(self.model.head(features), source_y)
        turns = torch.randint(4, (len(source_x),), generator=self.generator).to(source_x.device)
        rotation_logits = self.rotation_head(self.model.features(rotate_batch(source_x, turns)))
        rotation_loss = F.cross_entropy(rotation_logits, turns)
        self.step(class_loss + self.rotation_weight * rotation_loss)
        return {"class_loss": class_loss.item(), "rotation_loss": rotation_loss.item()}

    def adapter(self, lr: float = 1e-3, steps: int = 1, online: bool = False) -> TTTAdapter:
        """A `TTTAdapter` on copies of this method's classifier and rotation head."""
        return TTTAdapter(self.model, self.rotation_head, lr=lr, steps=steps, online=online)


class TTTAdapter(nn.Module):
    """Test-time training: a few steps of the shared extractor on each test image's rotation loss, then classify.

    ``ttt(x)`` returns the logits ``(N, K)`` of ``x``, one image at a time: for each image ``x_i``, its
    four rotations are the batch (`all_rotations`), and ``steps`` SGD steps minimise
    ``CE(G_r(G_f(rot(x_i))), r)`` over the extractor ``G_f``'s parameters only (the label predictor and the
    rotation head stay fixed); then ``G_y(G_f(x_i))`` classifies it. The networks run in evaluation mode
    throughout (batch norms keep their source statistics: four rotations of one image are no sample of a
    domain), as the paper does for its batch-norm networks.

    Args:
        model: the jointly trained classifier; rotation_head: its rotation head (both copied, never changed).
        lr: SGD's learning rate (the paper's: that of the last training epoch).
        steps: gradient steps per image (the paper's 1 for the online version, 10 for the standard one).
        online: keep the extractor's updates from image to image (the paper's "online" version, for a
            stream whose shift persists); otherwise every image starts from the trained weights.
    """

    def __init__(
        self,
        model: FeatureClassifier,
        rotation_head: nn.Module,
        lr: float = 1e-3,
        steps: int = 1,
        online: bool = False,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.rotation_head = copy.deepcopy(rotation_head).requires_grad_(False)
        self.model.features.requires_grad_(True)
        self.lr, self.steps, self.online = lr, steps, online
        self.optimizer = torch.optim.SGD(self.model.features.parameters(), lr=lr)
        self._trained = copy.deepcopy(self.model.features.state_dict())

    def reset(self) -> None:
        """Back to the trained extractor."""
        self.model.features.load_state_dict(self._trained)

    @torch.enable_grad()
    def adapt(self, image: torch.Tensor) -> None:
        """``steps`` SGD steps of the extractor on the rotation loss of one image ``(1, C, H, W)``."""
        rotated, turns = all_rotations(image)
        for _ in range(self.steps):
            loss = F.cross_entropy(self.rotation_head(self.model.features(rotated)), turns)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        logits = []
        for i in range(len(x)):
            image = x[i : i + 1]
            self.adapt(image)
            with torch.no_grad():
                logits.append(self.model(image))
            if not self.online:
                self.reset()
        return torch.cat(logits)
