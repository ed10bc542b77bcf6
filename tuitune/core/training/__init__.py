"""The pipeline's top: from a session to a launched, evaluated run. ``plan`` (the one
plan: spec, levers, launch, memory, verdict, and ``launch_plan``), ``launch`` (data
preparation into the run, and the session's evaluation), ``evaluate_run`` (``tuitune
evaluate RUN``) and ``jobs`` (Slurm and SkyPilot jobs). The wizard and the replay call these;
they hold no orchestration of their own.
"""
