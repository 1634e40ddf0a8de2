"""Shared building blocks of the transfer methods, one definition per idea.

Each is a small function or layer with its equation and paper; the methods (`tlcourse.library.methods`)
are made of them. They import nothing of the course but torch.

* `reversal`: the gradient reversal layer and DANN's schedules (`dann_lambda`, `annealed_lr`);
* `discriminators`: domain classifiers (`DomainDiscriminator`, `MultiDomainDiscriminator`, `domain_labels`);
* `entropies`: the entropy of predictions (`entropy`, `entropy_loss`);
* `colour`: colour randomisation with an explicit generator (`random_colour_domain`, `colour_and_shift`);
* `vat`: virtual adversarial training (`virtual_adversarial_loss`);
* `consistency`: FixMatch's consistency loss (`confident_consistency_loss`);
* `penalties`: cross-domain penalties (`coral_loss`, `irm_penalty`);
* `mmd`: DAN's multi-kernel MMD in linear time (`mk_mmd_linear`, `pairwise_gaussian`, `scaled_bandwidths`);
* `discrepancy`: MCD's disagreement of two classifiers (`classifier_discrepancy`).
"""

from tlcourse.library.modules.colour import colour_and_shift, random_colour_domain
from tlcourse.library.modules.consistency import confident_consistency_loss
from tlcourse.library.modules.discrepancy import classifier_discrepancy
from tlcourse.library.modules.discriminators import DomainDiscriminator, MultiDomainDiscriminator, domain_labels
from tlcourse.library.modules.entropies import entropy, entropy_loss
from tlcourse.library.modules.mmd import mk_mmd_linear, pairwise_gaussian, scaled_bandwidths
from tlcourse.library.modules.penalties import coral_loss, irm_penalty
from tlcourse.library.modules.reversal import (
    GradientReversal,
    GradientReversalFunction,
    annealed_lr,
    dann_lambda,
    gradient_reversal,
)
from tlcourse.library.modules.vat import unit_directions, virtual_adversarial_loss

__all__ = [
    "DomainDiscriminator",
    "GradientReversal",
    "GradientReversalFunction",
    "MultiDomainDiscriminator",
    "annealed_lr",
    "classifier_discrepancy",
    "colour_and_shift",
    "confident_consistency_loss",
    "coral_loss",
    "dann_lambda",
    "domain_labels",
    "entropy",
    "entropy_loss",
    "gradient_reversal",
    "irm_penalty",
    "mk_mmd_linear",
    "pairwise_gaussian",
    "random_colour_domain",
    "scaled_bandwidths",
    "unit_directions",
    "virtual_adversarial_loss",
]
