"""wearable_assets: Dagster assets that collect wearable data per participant-day.

Sources (Google Health / legacy Fitbit, ActiGraph CentrePoint) land in TimescaleDB and in an
Athena-style parquet lake; rollups and checks are built downstream. See README.md.
"""
