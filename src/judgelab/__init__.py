"""judgelab: a self-hosted metric lab for LLM-as-judge metrics on conversation logs."""

__version__ = "0.1.0"
