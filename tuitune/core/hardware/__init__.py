"""Stage 2, probe and size: what this machine (or a named GPU) is and what fits on it.

- ``probe``: GPUs through NVML, CPU and Apple MPS; ``torch_device``: whether torch can use them.
- ``gpu_table``: the bundled table of common GPUs, for ``tuitune plan --gpu``.
- ``precision``: the one dtype policy (estimator, runner, evaluation and chat).
- ``estimate``: peak training memory from a model's config; ``spec_memory``: a TrainSpec as
  the estimator's setup.
- ``recommend``: method, size and levers that fit, in the seeds' checklist order.
- ``recipe``: the speed levers (packing, attention, Liger, checkpointing, micro-batch).
- ``cpu_time``: how long a run takes on a CPU, for the verdict.
"""
