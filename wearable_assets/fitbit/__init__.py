"""Fitbit devices through the Google Health API v4 (primary) and the legacy Fitbit Web API."""
