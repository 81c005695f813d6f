"""distill-bot: distill a large language model into a small one from a Slack thread."""

__version__ = "0.1.0"
