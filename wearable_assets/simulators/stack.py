"""All provider simulators together, for the demo, `make dev`, CI's smoke run and end-to-end tests.

``SimulatorStack.env()`` returns the environment variables that point the project's clients at
the simulators (endpoints and the simulators' own client credentials), so everything downstream
runs the production code paths unchanged.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from wearable_assets import settings
from wearable_assets.roster import Participant, load_roster
from wearable_assets.simulators.centrepoint import CentrePointSimulator
from wearable_assets.simulators.cohort import DEMO_TRAITS, SyntheticCohort
from wearable_assets.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets.simulators.google_health import GoogleHealthSimulator


@dataclass
class SimulatorStack:
    participants: Sequence[Participant]
    #: "gone" mirrors today's legacy Fitbit API (HTTP 410 everywhere).
    fitbit_mode: str = "gone"
    google: GoogleHealthSimulator = field(init=False)
    fitbit: FitbitLegacySimulator = field(init=False)
    centrepoint: CentrePointSimulator = field(init=False)

    def __post_init__(self) -> None:
        # DEMO_TRAITS: one participant syncs late and sometimes leaves the tracker off, so the
        # completeness reasons and checks have something real to report.
        cohort = SyntheticCohort.from_roster(list(self.participants), traits=DEMO_TRAITS)
        self.cohort = cohort
        self.google = GoogleHealthSimulator(cohort)
        self.fitbit = FitbitLegacySimulator(cohort, mode=self.fitbit_mode)
        self.centrepoint = CentrePointSimulator(list(self.participants))

    @classmethod
    def demo(cls, **kwargs: object) -> SimulatorStack:
        return cls(load_roster(settings.roster_path()), **kwargs)  # type: ignore[arg-type]

    def start(self) -> SimulatorStack:
        for sim in (self.google, self.fitbit, self.centrepoint):
            sim.start()
        return self

    def stop(self) -> None:
        for sim in (self.google, self.fitbit, self.centrepoint):
            sim.stop()

    def __enter__(self) -> SimulatorStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return {
            "WEARABLES_GOOGLE_OAUTH_AUTH_URL": self.google.auth_url,
            "WEARABLES_GOOGLE_OAUTH_TOKEN_URL": self.google.token_url,
            "WEARABLES_GOOGLE_HEALTH_BASE_URL": self.google.base_url,
            "GOOGLE_CLIENT_ID": self.google.client_id,
            "GOOGLE_CLIENT_SECRET": self.google.client_secret,
            "WEARABLES_FITBIT_BASE_URL": self.fitbit.url,
            "FITBIT_CLIENT_ID": self.fitbit.client_id,
            "FITBIT_CLIENT_SECRET": self.fitbit.client_secret,
            "CENTREPOINT_BASE_URL": self.centrepoint.url,
            "CENTREPOINT_TOKEN_URL": self.centrepoint.token_url,
            "CENTREPOINT_CLIENT_ID": self.centrepoint.client_id,
            "CENTREPOINT_CLIENT_SECRET": self.centrepoint.client_secret,
        }


def ensure_local_token_key() -> None:
    """Give local runs a token-encryption key when the operator has not set one.

    Only for the simulator-backed local stack: the key is kept in the git-ignored state folder
    (mode 0600) so tokens stored by ``make demo`` stay readable by later local runs. Production
    sets ``WEARABLES_TOKEN_KEY`` from its secret store.
    """
    if os.environ.get("WEARABLES_TOKEN_KEY"):
        return
    path: Path = settings.state_dir() / "local_token.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    os.environ["WEARABLES_TOKEN_KEY"] = path.read_text().strip()
