"""The read side: a FastAPI data API over TimescaleDB and the dashboard it serves (docs/serving.md)."""
