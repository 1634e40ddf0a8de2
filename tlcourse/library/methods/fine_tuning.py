"""Fine-tuning: reuse a network trained on a source task for a target task with few labels.

The pieces every fine-tuning recipe is made of, and nothing that trains (the training recipes, such as
linear probe then fine-tune, live in `tlcourse.experiments.fine_tuning` on top of `tlcourse.library.train.fit`):

- which parameters train: `freeze`, `unfreeze`, `feature_blocks`, `freeze_blocks`, `trainable_parameters`
  (`tlcourse.library.models.count_parameters` counts them);
- a new head for the new classes: `new_head`;
- staying close to the pretrained model: `pretrained_parameters` and `l2_sp_penalty` (Li, Grandvalet &
  Davoine, ICML 2018), `lwf_loss` (Li & Hoiem, ECCV 2016);
- passing a model's knowledge on: `distillation_loss` (Hinton, Vinyals & Dean, 2015).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from tlcourse.library.models import FeatureClassifier

# Parameterised layers that belong to the block before them (a conv and its batch norm are one block).
_NORMALISATION = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


# --------------------------------------------------------------------------------- which parameters train
def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients to every parameter of ``module`` (``requires_grad = False``); returns ``module``.

    Frozen batch-norm layers still update their running statistics in training mode: call
    ``.eval()`` on them too if the statistics must stay fixed (the course's LeNet has none).
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Let every parameter of ``module`` train again (``requires_grad = True``); returns ``module``."""
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``module`` that require gradients: what an optimizer should be given."""
    return [p for p in module.parameters() if p.requires_grad]


def feature_blocks(model: FeatureClassifier) -> list[nn.Sequential]:
    """The blocks of ``model.features``, input side first: the units that `freeze_blocks` counts.

    A block starts at each child of ``model.features`` that has parameters (a convolution, a linear
    layer, a ResNet stage); a normalisation layer joins the block before it, and parameter-free
    children (ReLU, pooling) join the block before them. The LeNet has two blocks (conv1, conv2), the
    batch-norm CNN three (conv + BN each), the ResNet-18 adapter five (stem, layer1 .. layer4).

    Returns:
        one ``nn.Sequential`` per block, holding the model's own modules (not copies).
    """
    blocks: list[list[nn.Module]] = []
    for child in model.features.children():
        has_params = any(True for _ in child.parameters())
        if has_params and not (isinstance(child, _NORMALISATION) and blocks):
            blocks.append([child])
        elif blocks:
            blocks[-1].append(child)
    return [nn.Sequential(*block) for block in blocks]


def freeze_blocks(model: FeatureClassifier, k: int) -> FeatureClassifier:
    """Freeze the first ``k`` blocks of the feature extractor and let everything else train.

    ``k = 0`` is full fine-tuning; ``k = len(feature_blocks(model))`` is feature extraction (a frozen
    backbone, only the head trains). The state is set exactly, whatever was frozen before.

    Returns:
        ``model`` itself, changed in place.
    """
    blocks = feature_blocks(model)
    if not 0 <= k <= len(blocks):
        raise ValueError(
            f"k must lie in [0, {len(blocks)}]: this model's features have {len(blocks)} blocks, got k={k}."
        )
    unfreeze(model)
    for block in blocks[:k]:
        freeze(block)
    return model


# ------------------------------------------------------------------------------------------ a new head
def new_head(model: FeatureClassifier, num_classes: int) -> FeatureClassifier:
    """A classifier for a new task: ``model``'s feature extractor (shared, not copied) and a fresh linear head.

    The head maps ``model.num_features`` features to ``num_classes`` logits; its weights are drawn from
    torch's global generator (seed with `tlcourse.library.train.seed_everything`). Deep-copy ``model`` first
    to keep the pretrained weights.
    """
    return FeatureClassifier(model.features, nn.Linear(model.num_features, num_classes), model.num_features)


# ------------------------------------------------------------------------ staying close to the source
def pretrained_parameters(model: FeatureClassifier) -> dict[str, torch.Tensor]:
    """Detached copies of the feature extractor's parameters, named as in ``model.named_parameters()``.

    Take them right after loading the pretrained weights: they are the ``w^0`` of `l2_sp_penalty`.
    """
    return {f"features.{name}": p.detach().clone() for name, p in model.features.named_parameters()}


def l2_sp_penalty(
    model: nn.Module, reference_params: dict[str, torch.Tensor], alpha: float, beta: float
) -> torch.Tensor:
    r"""The L2-SP regulariser (Li, Grandvalet & Davoine, ICML 2018, eq. 3): stay close to the start point.

    .. math:: \Omega(w) = \frac{\alpha}{2} \lVert w_S - w_S^0 \rVert_2^2 + \frac{\beta}{2} \lVert w_{\bar S} \rVert_2^2

    ``w_S`` are the parameters shared with the pretrained model (those named in ``reference_params``,
    whose values are ``w_S^0``); ``w_{\bar S}`` are all the others, the new head, which get plain weight
    decay. Plain weight decay pulls every weight to 0, which forgets what pretraining learned; L2-SP
    pulls the shared ones back to the pretrained values instead.

    Args:
        model: the network being fine-tuned.
        reference_params: ``{name: w^0}`` with names of ``model.named_parameters()`` (see
            `pretrained_parameters`); each tensor has the shape of its parameter.
        alpha, beta: the two strengths (the paper uses alpha = 0.01 to 0.1, beta = 0.01).

    Returns:
        a 0-dim tensor, differentiable with respect to the model's parameters.
    """
    names = dict(model.named_parameters())
    unknown = sorted(set(reference_params) - set(names))
    if unknown:
        raise KeyError(
            f"reference_params names parameters the model does not have: {unknown[:3]}; "
            "build them with pretrained_parameters(model)."
        )
    device = next(iter(names.values())).device if names else None
    shared = torch.zeros((), device=device)
    new = torch.zeros((), device=device)
    for name, w in names.items():
        if name in reference_params:
            shared = shared + (w - reference_params[name].to(w.device)).pow(2).sum()
        else:
            new = new + w.pow(2).sum()
    return alpha / 2 * shared + beta / 2 * new


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): match the teacher's softened outputs.

    .. math::
        T^2 \, \frac{1}{N} \sum_n \mathrm{KL}\big(\mathrm{softmax}(t_n / T) \,\Vert\, \mathrm{softmax}(s_n / T)\big)

    The temperature ``T`` softens both distributions, so that the teacher's small probabilities
    ("this sandal looks a little like a sneaker") carry information; the factor ``T^2`` keeps the
    gradient's size about the same for every ``T`` (the soft gradients scale as ``1/T^2``). The
    teacher's logits are treated as constants.

    Args:
        student_logits, teacher_logits: ``(N, K)``.
        temperature: ``T > 0``; ``T = 1`` is the plain KL divergence between the two predictions.

    Returns:
        a 0-dim tensor (mean over the N examples), 0 when the student's logits equal the teacher's.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape, got {tuple(student_logits.shape)} "
            f"and {tuple(teacher_logits.shape)}."
        )
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1).mean()
    return temperature**2 * kl


def lwf_loss(
    model: FeatureClassifier,
    old_head: nn.Module,
    x: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
) -> torch.Tensor:
    """Learning without Forgetting's regulariser (Li & Hoiem, ECCV 2016): keep the old task's outputs.

    The fine-tuned features, read by the old task's head, should still give what the pretrained model
    gave on the same images: ``distillation_loss(old_head(model.features(x)), teacher_logits, T)``. Only
    the new task's images are needed, no source data. The paper uses ``T = 2``.

    Args:
        model: the network being fine-tuned (its features are shared with the old head).
        old_head: the pretrained model's head for the source classes.
        x: a batch of target images ``(N, C, H, W)``.
        teacher_logits: the pretrained model's logits on ``x``, ``(N, K_source)``, recorded or computed
            with a frozen copy.
    """
    return distillation_loss(old_head(model.features(x)), teacher_logits, temperature)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in evaluation mode with every parameter frozen: a fixed teacher."""
    return freeze(copy.deepcopy(model)).eval()
