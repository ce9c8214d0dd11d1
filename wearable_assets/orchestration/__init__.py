"""Orchestration: the daily schedule, the rollup automation sensor, jobs and concurrency pools."""
