"""Development tooling of wearable_assets: the provider simulators, the demo and a ``dagster dev`` driver.

Kept out of the runtime package (and so out of its wheel): an installed ``wearable_assets`` has no
use for simulated providers, and nothing in it imports this package. It is importable from the
checkout only (the repository root on ``sys.path``: ``python -m wearable_assets_dev`` run from it,
pytest, the benchmarks), and depends on ``wearable_assets``, never the other way round.
"""
