"""nbgrader configuration: the course root is this repository, chapters are folders of notebooks/."""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader provides get_config)

root = Path(__file__).resolve().parent
c.CourseDirectory.root = str(root)
c.CourseDirectory.course_id = "tlcourse"
c.CourseDirectory.source_directory = "notebooks"
# nbgrader's default of 30 s per cell is far too short for cells that train a network.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# Students delete or duplicate cells: put the graded cells back from the gradebook when they do.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# A class hub (python -m tlcourse hub) gives the instructor's server its own exchange.
c.Exchange.root = os.environ.get("TLCOURSE_EXCHANGE_ROOT") or str(root / "exchange")

# Cells that kill their kernel or ignore the timeout's interrupt cost their own points, not the rest:
# tlcourse's Execute restarts the kernel, replays the cells above, and goes on (tlcourse/classroom/instructor.py).
from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.preprocessors import Execute, OverwriteCells  # noqa: E402

from tlcourse.classroom.instructor import HideHiddenTests, ResilientExecute, RobustOverwriteCells  # noqa: E402

c.Autograde.autograde_preprocessors = [
    ResilientExecute if p is Execute else p for p in Autograde.class_traits()["autograde_preprocessors"].default()
]
# Deleted test cells come back even when the cells around them were deleted too (nbgrader 0.9 fails there).
c.Autograde.sanitize_preprocessors = [
    RobustOverwriteCells if p is OverwriteCells else p
    for p in Autograde.class_traits()["sanitize_preprocessors"].default()
]
# Feedback shows the visible tests, and of the hidden ones only pass or fail with the message: never their code.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
