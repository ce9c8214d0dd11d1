"""Enrol participants against the Google Health simulator without a person at the browser.

The simulator's consent page approves at once and redirects to the callback, so "opening" the
consent URL with an HTTP client completes the real authorization-code flow, through the same
``fitbit.enrol.enrol`` code path that the ``enroll`` command uses with a human.

Only participants without a usable token are enrolled. A token stored by an earlier run is
handed back to the freshly started simulator (``GoogleHealthState.restore_grant``: the real
service keeps grants across time, an in-memory simulator does not), so it keeps working and is
left alone. A participant marked ``needs_reconsent`` is never touched: re-enrolling would erase
the record that they withdrew consent (or that their grant died), which only a real re-consent
may clear.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests

from wearable_assets import settings
from wearable_assets.fitbit import google_health
from wearable_assets.fitbit.enrol import enrol
from wearable_assets.fitbit.resources import GoogleHealthResource, google_health_resource
from wearable_assets.oauth.crypto import TokenKeyError
from wearable_assets.oauth.errors import NeedsReconsent
from wearable_assets.roster import Participant
from wearable_assets.storage.timescale import Timescale
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator


@dataclass
class SimulatorEnrolment:
    """What ``enrol_with_simulator`` did, per participant id."""

    #: Had no token: enrolled now.
    enrolled: list[str] = field(default_factory=list)
    #: Had a token encrypted with another ``WEARABLES_TOKEN_KEY``: unusable here, enrolled again.
    reenrolled_other_key: list[str] = field(default_factory=list)
    #: Had a usable token: its grant was restored in the simulator, the row left as it was.
    kept: list[str] = field(default_factory=list)
    #: Marked ``needs_reconsent`` (with the reason): left exactly as they were.
    needs_reconsent: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per kind of outcome, for the operator (stderr)."""
        out = []
        if self.enrolled:
            out.append(f"enrolled through the simulator: {', '.join(self.enrolled)}")
        if self.kept:
            out.append(f"kept their stored tokens: {', '.join(self.kept)}")
        if self.reenrolled_other_key:
            out.append("enrolled again through the simulator (their stored tokens were encrypted with another "
                       f"WEARABLES_TOKEN_KEY): {', '.join(self.reenrolled_other_key)}")
        if self.needs_reconsent:
            out.append("left as they are, they need re-consent: " + ", ".join(
                f"{pid} ({reason})" for pid, reason in sorted(self.needs_reconsent.items())))
        return out


def _open_in_background(url: str) -> None:
    threading.Thread(target=lambda: requests.get(url, timeout=30), daemon=True).start()


def _user_id(p: Participant) -> str:
    """The simulated Google account: the one the consent page signs in (``login_hint``)."""
    return p.fitbit_user_id or p.participant_id


def enrol_with_simulator(
    participants: list[Participant], timescale: Timescale, resource: GoogleHealthResource,
    simulator: GoogleHealthSimulator,
) -> SimulatorEnrolment:
    """Enrol the Google Health participants that have no usable token; see the module docstring."""
    store = resource.token_store(timescale)
    outcome = SimulatorEnrolment()
    for p in participants:
        if p.fitbit_provider != google_health.PROVIDER:
            continue
        status = store.status(p.participant_id, google_health.PROVIDER)
        if status.auth_state == "needs_reconsent":
            outcome.needs_reconsent[p.participant_id] = status.reason or "needs_reconsent"
            continue
        target = outcome.enrolled
        try:
            token = store.stored_token(p.participant_id, google_health.PROVIDER)
        except NeedsReconsent:
            pass  # no token stored (not enrolled): enrol
        except TokenKeyError:
            target = outcome.reenrolled_other_key
        else:
            simulator.state.restore_grant(_user_id(p), token)
            outcome.kept.append(p.participant_id)
            continue
        enrol(
            participant_id=p.participant_id,
            app=resource.oauth_app(),
            store=store,
            announce=_open_in_background,
            port=0,
            timeout_s=30,
            auth_params={"access_type": "offline", "prompt": "consent", "login_hint": _user_id(p)},
        )
        target.append(p.participant_id)
    return outcome


def enrol_roster(participants: list[Participant], simulator: GoogleHealthSimulator) -> SimulatorEnrolment:
    """``enrol_with_simulator`` with the operator's database and Google Health client (the
    environment's, as a run would build them): what ``simulators exec`` and the demo do first."""
    timescale = Timescale(settings.timescale_dsn())
    resource = google_health_resource().process_config_and_initialize()
    return enrol_with_simulator(participants, timescale, resource, simulator)
