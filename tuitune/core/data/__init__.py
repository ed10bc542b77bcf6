"""Training data: load any common fine-tuning format, curate it, and show what gets trained.

Modules, each owning one step:

- ``loading``: read JSONL / JSON / CSV / Parquet / ``save_to_disk`` directories, row by row,
  with file and line for every bad row.
- ``formats``: detect the format of rows (with confidence and reason) and convert them to TRL's
  standard forms.
- ``curation``: cleaning steps (HTML, whitespace, broken conversations, duplicates, PII,
  token length), each reporting counts and examples.
- ``pii``, ``dedup``: the PII patterns and the MinHash near-duplicate search used by curation.
- ``templates``: chat-template checks (no template, ChatML fallback, generation markers).
- ``stats``: counts, token-length histogram, turns, green/red flags.
- ``prepare``: the whole pipeline, writing the curated set and its manifest to the run.
- ``training_view``: what the trainer receives (datasets + SFTConfig arguments) and the label
  preview computed through TRL's own tokenization.

Nothing here imports torch, transformers, trl or datasets at module level.
"""
