"""tuitune: a terminal wizard from "should I fine-tune?" to a trained, evaluated model."""

__version__ = "0.1.0"
