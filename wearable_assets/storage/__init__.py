"""The one home for writing: TimescaleDB (``timescale``), the parquet lake (``lake``), migrations."""
