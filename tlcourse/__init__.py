"""tlcourse: reference implementations for a course on transfer learning, on three shelves.

* `tlcourse.library`: data, models, shared modules, methods, the training loop, metrics and plots;
* `tlcourse.experiments`: one module per chapter that reproduces its table, and the expected ranges;
* `tlcourse.classroom`: the notebook runner, the grading tools and the benchmark.

Imports only go down the shelves: classroom -> experiments -> library (see docs/architecture.md).
"""

__version__ = "0.1.0"
