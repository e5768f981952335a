"""The Temporal worker: the definition interpreter and the runner activities."""
