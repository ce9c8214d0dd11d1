"""All provider simulators together, for the demo, `make dev`, CI's smoke run and end-to-end tests.

``SimulatorStack.env()`` returns the environment variables that point the project's clients at
the simulators (endpoints and the simulators' own client credentials), so everything downstream
runs the production code paths unchanged. ``run_forwarding_signals`` runs the command of
``python -m wearable_assets_dev simulators exec`` under them.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from wearable_assets import settings
from wearable_assets.roster import Participant, load_roster
from wearable_assets_dev.simulators.centrepoint import CentrePointSimulator
from wearable_assets_dev.simulators.cohort import DEMO_TRAITS, SyntheticCohort
from wearable_assets_dev.simulators.fitbit_legacy import FitbitLegacySimulator
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator


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
            settings.GOOGLE_AUTH_URL_ENV: self.google.auth_url,
            settings.GOOGLE_TOKEN_URL_ENV: self.google.token_url,
            settings.GOOGLE_BASE_URL_ENV: self.google.base_url,
            settings.GOOGLE_CLIENT_ID_ENV: self.google.client_id,
            settings.GOOGLE_CLIENT_SECRET_ENV: self.google.client_secret,
            settings.FITBIT_BASE_URL_ENV: self.fitbit.url,
            settings.FITBIT_CLIENT_ID_ENV: self.fitbit.client_id,
            settings.FITBIT_CLIENT_SECRET_ENV: self.fitbit.client_secret,
            settings.CENTREPOINT_BASE_URL_ENV: self.centrepoint.url,
            settings.CENTREPOINT_TOKEN_URL_ENV: self.centrepoint.token_url,
            settings.CENTREPOINT_CLIENT_ID_ENV: self.centrepoint.client_id,
            settings.CENTREPOINT_CLIENT_SECRET_ENV: self.centrepoint.client_secret,
        }


def ensure_local_token_key() -> None:
    """Give local runs a token-encryption key when the operator has not set one.

    Only for the simulator-backed local stack: the key is kept in the git-ignored state folder
    (mode 0600) so tokens stored by ``make demo`` stay readable by later local runs. Production
    sets ``WEARABLES_TOKEN_KEY`` from its secret store.
    """
    if os.environ.get(settings.TOKEN_KEY_ENV):
        return
    path: Path = settings.state_dir() / "local_token.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    os.environ[settings.TOKEN_KEY_ENV] = path.read_text().strip()


#: Signals ``run_forwarding_signals`` passes on to its child.
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _terminal_delivers_sigint() -> bool:
    """True when this process is in the terminal's foreground group: Ctrl-C then reaches the
    child (same process group) directly, and forwarding it too would deliver it twice (``dagster
    dev`` treats a second interrupt as "stop without cleaning up")."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def run_forwarding_signals(command: Sequence[str]) -> int:
    """Run ``command`` to its end, passing SIGTERM and SIGINT on to it; returns its exit status.

    A wrapper that dies on SIGTERM leaves its child running (a ``dagster dev`` that nobody stops)
    and stops the simulators under it. Here the signal goes to the child and the wrapper keeps
    waiting, so the child can shut down cleanly while its simulators still answer. A child killed
    by a signal yields ``128 + signal``, as a shell reports it.
    """
    # The handlers go in before the child starts: a signal that arrives while it is starting is
    # held and passed on as soon as it exists, never lost (nor allowed to kill the wrapper).
    started: list[subprocess.Popen[bytes]] = []
    held: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and _terminal_delivers_sigint():
            return
        if not started:
            held.append(signum)
        elif started[0].poll() is None:
            started[0].send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        child = subprocess.Popen(list(command))
        started.append(child)
        for signum in held:
            child.send_signal(signum)
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
