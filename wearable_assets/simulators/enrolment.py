"""Enrol participants against the Google Health simulator without a person at the browser.

The simulator's consent page approves at once and redirects to the callback, so "opening" the
consent URL with an HTTP client completes the real authorization-code flow, through the same
``fitbit.enrol.enrol`` code path that the ``enroll`` command uses with a human.
"""

from __future__ import annotations

import threading

import requests

from wearable_assets.fitbit import google_health
from wearable_assets.fitbit.enrol import enrol
from wearable_assets.fitbit.resources import GoogleHealthResource
from wearable_assets.roster import Participant
from wearable_assets.storage.timescale import Timescale


def _open_in_background(url: str) -> None:
    threading.Thread(target=lambda: requests.get(url, timeout=30), daemon=True).start()


def enrol_with_simulator(
    participants: list[Participant], timescale: Timescale, resource: GoogleHealthResource
) -> list[str]:
    """Enrol every Google Health participant; returns their ids.

    Everyone, not only those without stored tokens: a simulator starts with no grants, so tokens
    stored while an earlier simulator ran are unknown to this one and would be refused
    (``invalid_grant``). Enrolling again replaces them, as a participant's re-consent does.
    """
    enrolled: list[str] = []
    for p in participants:
        if p.fitbit_provider != google_health.PROVIDER:
            continue
        enrol(
            participant_id=p.participant_id,
            app=resource.oauth_app(),
            store=resource.token_store(timescale),
            announce=_open_in_background,
            port=0,
            timeout_s=30,
            auth_params={"access_type": "offline", "prompt": "consent", "login_hint": p.fitbit_user_id or p.participant_id},
        )
        enrolled.append(p.participant_id)
    return enrolled
