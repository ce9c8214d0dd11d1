"""``python -m wearable_assets.serving [--port N]``: the same as ``wearable-assets serve``."""

from wearable_assets.serving.cli import serve

serve()
