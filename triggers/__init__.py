"""The triggers service: events in, workflow starts out."""
