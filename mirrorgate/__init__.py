"""mirrorgate: a Gateway API HTTP gateway whose specialty is request mirroring."""

__version__ = "0.1.0"
