"""Participants: the roster mirrored into the database and into Dagster's dynamic partitions."""
