"""Stage 5, ship: ``export`` (the adapter, a merged model, configs for TRL, Axolotl and
LLaMA-Factory), ``quantized`` (bitsandbytes 4/8-bit saves, GGUF, the model card) and
``chat`` (side-by-side chat with the base and the tuned model).
"""
