"""The classroom: running the course's notebooks, grading a class, and measuring the budgets.

``course`` executes the chapter notebooks; ``grading`` holds what the notebooks' test cells call;
``instructor`` wraps nbgrader (release, collect, autograde, feedback, export); ``benchmark`` times
everything against the course's budgets; ``notebook_hygiene`` checks that the notebooks are committed
clean (``make lint`` runs it).
"""
