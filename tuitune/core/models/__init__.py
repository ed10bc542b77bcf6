"""Model references: ``resolve`` (a ref, a local folder, the embedded default, the HF
cache), ``catalog`` (the bundled list of models with their configs) and ``session_names``
(names for sessions, from the model).
"""
