"""Loopback HTTP simulators of the provider APIs (Google Health, legacy Fitbit, CentrePoint).

The real services are unreachable from development and CI machines, so the demo and the tests
talk to these over real HTTP on 127.0.0.1, with real OAuth flows, the documented JSON shapes,
rate-limit headers, pagination and injectable faults.
"""
