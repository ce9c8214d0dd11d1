"""``python -m wearable_assets_dev``: the development CLI (``wearable_assets_dev/cli.py``)."""

from wearable_assets_dev.cli import main

main()
