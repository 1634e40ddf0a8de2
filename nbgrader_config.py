"""nbgrader configuration: the course root is this repository, chapters are folders of notebooks/."""

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
c.Exchange.root = str(root / "exchange")
