"""Stage 5, evaluate: ``tasks`` (the evaluation tasks and their scorers), ``scoring``
(before/after generation and scores with paired intervals), ``forgetting`` (general-data loss
before and after) and ``report`` (report.md and its rows).
"""
