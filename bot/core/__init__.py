"""The vocabulary every stage shares: clock, settings, errors, logs, background tasks, money, retries,
the OpenAI-compatible client, and the events a run emits."""
