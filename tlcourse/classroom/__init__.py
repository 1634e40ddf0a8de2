"""The classroom: running the course's notebooks, grading a class, and measuring the budgets.

``course`` executes the chapter notebooks; ``grading`` holds what the notebooks' test cells call;
``instructor`` wraps nbgrader (release, collect, autograde, feedback, export); ``benchmark`` times
everything against the course's budgets; ``notebook_hygiene`` checks that the notebooks are committed
clean (``make lint`` runs it).
"""

import sys

# nbformat's schema check imports jsonschema, whose format checker imports `rfc3987_syntax` when it is
# installed (jupyter-events pulls it in), and that module compiles 39 Lark grammars on import: about 1 s of
# CPU (3 s on a busy machine) in every process that touches a notebook, every `grade` command and grading
# worker included. No schema the classroom validates (notebooks, nbgrader's) uses the IRI formats it
# checks: without it, importing nbformat takes a tenth of the time. A process that imported it already keeps it.
sys.modules.setdefault("rfc3987_syntax", None)
