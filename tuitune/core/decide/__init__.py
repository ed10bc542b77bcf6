"""Stage 1, decide: whether to fine-tune at all (``decision``: the fine-tune vs RAG vs
prompting tree, its green and red flags, and the verdict revisited once the data is counted).
Imports nothing else of tuitune.
"""
