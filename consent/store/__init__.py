"""Persistence: the database models, the engine wiring, and snapshot reads on PostgreSQL."""
