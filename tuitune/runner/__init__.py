"""The training child: ``python -m tuitune.runner SPEC.json [--resume]``.

Builds the TRL trainer a TrainSpec asks for and writes one JSON event per line to
``RUN/events.jsonl``. Never imports textual; launched and watched by tuitune.core.runs.process.
"""
