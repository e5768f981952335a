"""Hookline's shared runtime: settings, logging, Kafka/Temporal helpers, the local stack, the CLI."""
