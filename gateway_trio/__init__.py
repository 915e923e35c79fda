"""gateway-trio: an OpenAI- and Anthropic-compatible LLM API gateway built as actors on trio."""

__version__ = "0.1.0"
