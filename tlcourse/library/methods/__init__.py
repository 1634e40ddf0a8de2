"""Transfer methods, one module per family, each method a small class with its equation and paper.

Two contracts (`base`): a `Method` (domain adaptation) takes one training step with
``update(source_x, source_y, target_x, progress) -> dict of losses``; a `MultiDomainMethod` (domain
generalization) with ``update(minibatches, progress)``; both classify with ``predict(x) -> logits``.
`tlcourse.library.train.fit_method` and `tlcourse.library.train.fit_domains` run them. The families:

* `adversarial`: DANN (its losses: `dann_losses`); `discrepancy`: DAN (MK-MMD), MCD (two classifiers);
* `boundary`: entropy minimisation, VADA, DIRT-T, FixMatch;
* `fine_tuning`: freezing, new heads, L2-SP, distillation; `generalization`: ERM, CORAL, IRM, Mixup,
  domain randomisation; `label_shift`: BBSE, EM, calibration; `tta`: test-time adaptation (BN, TENT, TTT);
* `universal`: partial, open-set and universal adaptation (PADA, OVANet).

Their building blocks (gradient reversal, entropy, VAT, ...) are in `tlcourse.library.modules`.
"""

from tlcourse.library.methods.adversarial import DANN, dann_losses
from tlcourse.library.methods.base import BaseMethod, Method, Minibatches, MultiDomainMethod, SourceOnly
from tlcourse.library.methods.boundary import DIRTT, VADA, EntropyMinimization, FixMatch, FixMatchDANN
from tlcourse.library.methods.discrepancy import DAN, MCD, fresh_copy
from tlcourse.library.methods.fine_tuning import (
    distillation_loss,
    feature_blocks,
    freeze,
    freeze_blocks,
    frozen_copy,
    l2_sp_penalty,
    lwf_loss,
    new_head,
    pretrained_parameters,
    trainable_parameters,
    unfreeze,
)
from tlcourse.library.methods.generalization import (
    CORAL,
    ERM,
    IRM,
    AdversarialAugmentation,
    AugmentedERM,
    DomainAdversarial,
    InterDomainMixup,
    randomize_domain,
)
from tlcourse.library.methods.label_shift import (
    Calibration,
    confusion_matrix,
    em_prior_adjustment,
    em_update,
    estimate_label_shift_bbse,
    fit_bcts,
    fit_temperature,
    importance_weighted_cross_entropy,
    reweight_posteriors,
    source_prior,
    true_weights,
    weight_squared_error,
)
from tlcourse.library.methods.tta import (
    TTT,
    Tent,
    TTTAdapter,
    all_rotations,
    batch_norm_layers,
    bn_adapted,
    predict_stream,
    rotate_batch,
    tent_parameters,
    use_batch_statistics,
)
from tlcourse.library.methods.universal import PADA, OVANet, open_entropy, ova_loss, predict_with_unknown

__all__ = ["BaseMethod", "Method", "Minibatches", "MultiDomainMethod", "SourceOnly"]
__all__ += ["DAN", "MCD", "fresh_copy"]
__all__ += ["DANN", "DIRTT", "VADA", "EntropyMinimization", "FixMatch", "FixMatchDANN", "dann_losses"]
__all__ += [
    "distillation_loss",
    "feature_blocks",
    "freeze",
    "freeze_blocks",
    "frozen_copy",
    "l2_sp_penalty",
    "lwf_loss",
    "new_head",
    "pretrained_parameters",
    "trainable_parameters",
    "unfreeze",
]
__all__ += [
    "CORAL",
    "ERM",
    "IRM",
    "AdversarialAugmentation",
    "AugmentedERM",
    "DomainAdversarial",
    "InterDomainMixup",
    "randomize_domain",
]
__all__ += [
    "Calibration",
    "confusion_matrix",
    "em_prior_adjustment",
    "em_update",
    "estimate_label_shift_bbse",
    "fit_bcts",
    "fit_temperature",
    "importance_weighted_cross_entropy",
    "reweight_posteriors",
    "source_prior",
    "true_weights",
    "weight_squared_error",
]
__all__ += [
    "TTT",
    "TTTAdapter",
    "Tent",
    "all_rotations",
    "batch_norm_layers",
    "bn_adapted",
    "predict_stream",
    "rotate_batch",
    "tent_parameters",
    "use_batch_statistics",
]
__all__ += ["PADA", "OVANet", "open_entropy", "ova_loss", "predict_with_unknown"]
