"""Transfer methods, one module per family. Every method keeps to one contract (`Method`):

``update(source_x, source_y, target_x, progress) -> dict of losses`` takes one training step, and
``predict(x) -> logits`` classifies. `tlcourse.library.train.fit_method` runs any of them.
"""

from tlcourse.library.methods.base import Method, SourceOnly
from tlcourse.library.methods.boundary import DIRTT, VADA, EntropyMinimization, entropy_loss, virtual_adversarial_loss
from tlcourse.library.methods.dann import DANN, DomainDiscriminator, GradientReversal, annealed_lr, dann_lambda, gradient_reversal

__all__ = ["Method", "SourceOnly"]
__all__ += ["DANN", "DomainDiscriminator", "GradientReversal", "annealed_lr", "dann_lambda", "gradient_reversal"]
__all__ += ["DIRTT", "VADA", "EntropyMinimization", "entropy_loss", "virtual_adversarial_loss"]
