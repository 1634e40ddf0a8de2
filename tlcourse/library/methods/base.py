"""The contracts every transfer method keeps, after DomainBed's ``Algorithm`` (Gulrajani & Lopez-Paz, ICLR 2021).

A method owns its networks and its optimizer(s), so that methods with several players (a domain
classifier, two heads) need nothing special from the training loop. Two contracts, siblings on a
common base (`BaseMethod`: the model, the optimizer helpers, ``step`` and ``predict``):

* `Method`, domain adaptation: ``update(source_x, source_y, target_x, progress)``, one labelled source
  batch and one unlabelled target batch per step (`tlcourse.library.train.fit_method` runs it);
* `MultiDomainMethod`, domain generalization: ``update(minibatches, progress)``, one labelled batch per
  training domain (`tlcourse.library.train.fit_domains` runs it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from tlcourse.library.models import FeatureClassifier

Minibatches = Sequence[tuple[torch.Tensor, torch.Tensor]]


class BaseMethod(nn.Module):
    """What every method has: a classifier, an optimizer, a step and a prediction.

    Subclasses add an ``update`` (see `Method` and `MultiDomainMethod`); `predict` defaults to the
    classifier's logits.

    Args:
        model: the classifier, split into ``features`` and ``head``.
        lr: the learning rate of the default optimizer (Adam over every trainable parameter of the
            method, the classifier and any module a subclass adds before calling `make_optimizer`).
    """

    def __init__(self, model: FeatureClassifier, lr: float = 1e-3) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.optimizer: torch.optim.Optimizer | None = None

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over every trainable parameter of the method; call it at the end of ``__init__``."""
        self.optimizer = torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)
        return self.optimizer

    def step(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` and take an optimizer step."""
        assert self.optimizer is not None, "call self.make_optimizer() at the end of __init__"
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)``."""
        return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)


class Method(BaseMethod):
    """A domain-adaptation method: each step sees a labelled source batch and an unlabelled target batch."""

    def update(
        self, source_x: torch.Tensor, source_y: torch.Tensor, target_x: torch.Tensor, progress: float
    ) -> dict[str, float]:
        """One training step on a labelled source batch and an unlabelled target batch.

        Args:
            source_x: ``(B, C, H, W)`` source images; source_y: ``(B,)`` their labels.
            target_x: ``(B', C, H, W)`` target images (never their labels).
            progress: the fraction of training done, in [0, 1] (for schedules such as DANN's lambda).

        Returns:
            the step's losses as floats, for the history.
        """
        raise NotImplementedError


class MultiDomainMethod(BaseMethod):
    """A domain-generalization method: `update` takes one ``(x, y)`` minibatch per training domain."""

    def update(self, minibatches: Minibatches, progress: float) -> dict[str, float]:
        """One step on ``[(x_1, y_1), ..., (x_K, y_K)]``, one labelled minibatch per training domain.

        ``progress`` is the fraction of training done, in [0, 1], for schedules.
        """
        raise NotImplementedError


class SourceOnly(Method):
    """Empirical risk minimisation on the source, ``L = CE(G(x_s), y_s)`` (Vapnik, 1992): the baseline
    every adaptation method must beat.

    Args:
        augment: if given, every source batch is trained on as ``augment(source_x)``: a prior about
            what the label does not depend on, with no target image involved (chapter 5's idea).
    """

    def __init__(
        self, model: FeatureClassifier, lr: float = 1e-3, augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        super().__init__(model, lr)
        self.augment = augment
        self.make_optimizer()

    def update(self, source_x, source_y, target_x, progress):
        if self.augment is not None:
            source_x = self.augment(source_x)
        loss = nn.functional.cross_entropy(self.model(source_x), source_y)
        self.step(loss)
        return {"loss": loss.item()}
