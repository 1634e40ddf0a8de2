"""The classroom's own error, light to import: the command line catches it without loading nbgrader."""


class GradingError(RuntimeError):
    """nbgrader could not do a step; the message says which, nbgrader's last words, and what to try."""
