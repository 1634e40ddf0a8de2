"""Partial, open-set and universal domain adaptation: when source and target do not share their classes.

* **PADA** (Cao et al., ECCV 2018), for the partial setting: DANN, with every source image weighted by
  ``gamma_y``, the average predicted probability of its class over the target. Source classes absent
  from the target get small weights, so the domain classifier stops pulling them onto target images
  and the label loss stops favouring them.
* **OVANet** (Saito & Saenko, ICCV 2021), for open-set and universal settings: besides the closed-set
  head, one binary "is it class k?" classifier per class. An image is "unknown" when the binary
  classifier of its predicted class says no: the threshold (0.5) is learned per class, not tuned.
* Plain models (source-only, DANN) reject with a fixed confidence threshold, `predict_with_unknown`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from tlcourse.library.methods.adversarial import DANN
from tlcourse.library.methods.base import Method
from tlcourse.library.models import FeatureClassifier, lenet_head
from tlcourse.library.modules import domain_labels


def predict_with_unknown(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Closed-set predictions ``(N,)``, with ``K`` ("unknown") where the top softmax probability < ``threshold``."""
    probs = logits.softmax(1)
    confidence, predicted = probs.max(1)
    return torch.where(confidence < threshold, torch.full_like(predicted, logits.shape[1]), predicted)


class PADA(DANN):
    """Partial adversarial domain adaptation: DANN with class weights ``gamma`` on the source side.

    ``gamma_k = mean_target softmax_k``, normalised by its maximum (Cao et al., 2018, eq. 5), kept as an
    exponential moving average over target batches (``momentum``) instead of a pass over the whole
    target every epoch. Each step minimises

        ``L = mean_i gamma_{y_i} CE(x_i, y_i)``
        ``    + [mean_i gamma_{y_i} BCE(G_d(R(f_i)), 1) + mean_j BCE(G_d(R(f_j)), 0)] / 2``

    over a source batch ``i`` and a target batch ``j``. Other arguments as `DANN`.
    """

    def __init__(self, model: FeatureClassifier, num_classes: int, momentum: float = 0.9, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.momentum = float(momentum)
        self.register_buffer("class_weights", torch.ones(num_classes))

    def update(self, source_x, source_y, target_x, progress):
        self.schedule(progress)
        n_s = len(source_x)
        features = self.model.features(torch.cat([source_x, target_x]))
        logits = self.model.head(features)
        with torch.no_grad():
            target_mean = logits[n_s:].softmax(1).mean(0)
            self.class_weights.mul_(self.momentum).add_((1 - self.momentum) * target_mean / target_mean.max())
            gamma = self.class_weights / self.class_weights.max()
        w = gamma[source_y]
        class_loss = (w * F.cross_entropy(logits[:n_s], source_y, reduction="none")).mean()
        domain_logits = self.discriminator(self.grl(features))
        labels = domain_labels(n_s, len(target_x), features.device)
        per_image = F.binary_cross_entropy_with_logits(domain_logits, labels, reduction="none")
        domain_loss = ((w * per_image[:n_s]).mean() + per_image[n_s:].mean()) / 2
        self.step(class_loss + domain_loss)
        return {"class_loss": class_loss.item(), "domain_loss": domain_loss.item(), "lambda": self.grl.lambda_}


def ova_loss(ova_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """OVANet's one-vs-all loss with hard-negative mining (Saito & Saenko, 2021, eq. 1).

    ``ova_logits``: ``(N, 2, K)``, channel 1 = "is class k". For each image: ``-log p_y(pos)``
    for its own class, and ``-min_{k != y} log p_k(neg)`` for the hardest other class.
    """
    probs = ova_logits.softmax(1)  # (N, 2, K)
    positive = F.one_hot(labels, probs.shape[2]).float()
    own = -(torch.log(probs[:, 1] + 1e-8) * positive).sum(1)
    hardest = (-torch.log(probs[:, 0] + 1e-8) * (1 - positive)).max(1).values  # = - min_{k != y} log p_k(neg)
    return (own + hardest).mean()


def open_entropy(ova_logits: torch.Tensor) -> torch.Tensor:
    """OVANet's open-set entropy on target images: mean over classes of each binary classifier's entropy.

    ``(1/N) sum_i (1/K) sum_k H(p_ik(pos), p_ik(neg))``: the entropy of K one-vs-all decisions, not of the
    K-way prediction (`tlcourse.library.modules.entropy`); ``log`` of ``p + 1e-8``, as in the paper's code.
    """
    probs = ova_logits.softmax(1)
    return -(probs * torch.log(probs + 1e-8)).sum(1).mean(1).mean()


class OVANet(Method):
    """One-vs-all network for open-set and universal adaptation.

    ``L = CE(closed head) + ova_loss(source) + entropy_weight * open_entropy(target)``. At test time
    (`predict_open`): the closed head picks class ``k``; the image is unknown (label ``K``) when
    ``p_k(pos) < 0.5``.

    Args:
        model: the classifier; its head is the closed-set head.
        num_classes: K, the source classes.
        entropy_weight: weight of the open-set entropy on target images (the paper's 0.1).
        ova_hidden: the one-vs-all head is LeNet's label predictor with ``2K`` outputs.
    """

    def __init__(
        self, model: FeatureClassifier, num_classes: int, lr: float = 1e-3, entropy_weight: float = 0.1
    ) -> None:
        super().__init__(model, lr)
        self.num_classes = num_classes
        self.ova_head = lenet_head(model.num_features, 2 * num_classes)
        self.entropy_weight = float(entropy_weight)
        self.make_optimizer()

    def ova_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.ova_head(features).view(len(features), 2, self.num_classes)

    def update(self, source_x, source_y, target_x, progress):
        n_s = len(source_x)
        features = self.model.features(torch.cat([source_x, target_x]))
        class_loss = F.cross_entropy(self.model.head(features[:n_s]), source_y)
        ova = self.ova_logits(features)
        one_vs_all = ova_loss(ova[:n_s], source_y)
        entropy = open_entropy(ova[n_s:])
        self.step(class_loss + one_vs_all + self.entropy_weight * entropy)
        return {"class_loss": class_loss.item(), "ova_loss": one_vs_all.item(), "open_entropy": entropy.item()}

    @torch.no_grad()
    def predict_open(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Labels ``(N,)`` in ``[0, K]``, ``K`` meaning unknown."""
        was_training = self.training
        self.eval()
        out = []
        device = next(self.parameters()).device
        for i in range(0, len(x), batch_size):
            features = self.model.features(x[i : i + batch_size].to(device))
            predicted = self.model.head(features).argmax(1)
            p_known = self.ova_logits(features).softmax(1)[:, 1]  # (B, K)
            known = p_known.gather(1, predicted[:, None]).squeeze(1) >= 0.5
            out.append(torch.where(known, predicted, torch.full_like(predicted, self.num_classes)).cpu())
        self.train(was_training)
        return torch.cat(out)


__all__ = ["PADA", "OVANet", "open_entropy", "ova_loss", "predict_with_unknown"]
