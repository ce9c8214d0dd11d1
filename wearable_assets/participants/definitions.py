"""Dagster objects of the participants domain."""

import dagster as dg

from wearable_assets.participants.sensors import roster_sensor

defs = dg.Definitions(sensors=[roster_sensor])
