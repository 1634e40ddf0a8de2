"""tlcourse: reference implementations for a course on transfer learning.

Modules, bottom to top (nothing imports upward):
``data`` -> ``models`` -> ``methods`` -> ``train`` / ``metrics`` -> ``experiments``;
``plots``, ``expected`` and ``grading`` serve the notebooks.
"""

__version__ = "0.1.0"
