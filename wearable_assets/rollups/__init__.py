"""Rollups of the loaded wearable data (hourly, participant-day, cohort week) and their checks."""
