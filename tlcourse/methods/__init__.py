"""Transfer methods, one module per family. Every method keeps to one contract (`Method`):

``update(source_x, source_y, target_x, progress) -> dict of losses`` takes one training step, and
``predict(x) -> logits`` classifies. `tlcourse.train.fit_method` runs any of them.
"""

from tlcourse.methods.base import Method, SourceOnly

__all__ = ["Method", "SourceOnly"]
