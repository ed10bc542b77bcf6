"""Stage 4's files and processes: a run directory and the training child behind it.

- ``rundir``: the run directory's files; ``events``: the event protocol in events.jsonl.
- ``process``: start, stop, resume, list and watch the child (``python -m tuitune.runner``).
- ``follow``: one follow loop and event formatter for every viewer.
- ``nodes``: several machines (torchrun rendezvous, per-node ranks).
- ``tracking``: where each tracker's metrics go; ``session_of``: the session a run came from.
"""
