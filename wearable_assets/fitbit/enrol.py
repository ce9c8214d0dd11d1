"""Enrolment: get a participant's consent and store their tokens (encrypted).

The operator runs ``wearable-assets enroll --participant P001``; we print the provider's consent
URL and listen on ``http://127.0.0.1:<port>/callback`` for the redirect that carries the
authorization code. The code is exchanged at once (with the PKCE verifier that only this
process knows) and the tokens go straight into the token store, so they never appear on a
screen, in a shell history or in a log. The callback server binds the loopback interface only
and serves exactly one request to ``/callback``.

The legacy Fitbit consent page and token endpoint were turned off (HTTP 410 Gone); a legacy
enrolment checks the consent page first and stops at once with the re-consent instruction,
instead of printing a URL that can never call back.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

from wearable_assets.oauth.app import OAuthApp
from wearable_assets.oauth.errors import REASONS, InvalidGrant, reconsent_instruction
from wearable_assets.oauth.store import TokenStore


class EnrolmentError(RuntimeError):
    """Consent did not complete (denied, timed out, state mismatch, …)."""


def gone_message(participant_id: str, provider: str, where: str) -> str:
    return (f"cannot enrol {participant_id} with {provider}: its {where} answered 410 Gone, "
            f"{REASONS['gone_410']}. Fix: {reconsent_instruction(participant_id, provider, 'gone_410')}")


def refuse_if_gone(app: OAuthApp, participant_id: str, timeout_s: float = 10.0) -> None:
    """Raise ``EnrolmentError`` when the provider's consent page answers 410 Gone.

    A plain GET of the consent page without parameters: no code is issued, nothing is stored.
    If the page cannot be reached from here, the flow goes on (the operator's browser may
    reach it where this host cannot).
    """
    try:
        response = requests.get(app.auth_url, allow_redirects=False, timeout=timeout_s)
    except requests.RequestException:
        return
    if response.status_code == 410:
        raise EnrolmentError(gone_message(participant_id, app.provider, "consent page"))


@dataclass(frozen=True)
class Enrolment:
    participant_id: str
    provider: str
    granted_scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]


class _CallbackServer(HTTPServer):
    """Holds the one callback's query parameters for the waiting thread."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _CallbackHandler)
        self.params: dict[str, str] | None = None
        self.received = threading.Event()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # http.server naming
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404, "only /callback is served here")
            return
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        ok = "code" in params and "error" not in params
        message = "Consent received. You can close this window." if ok else (
            f"Consent failed: {html.escape(params.get('error', 'no code in the callback'))}")
        body = f"<!doctype html><title>wearable_assets enrolment</title><p>{message}</p>".encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.params is None:
            self.server.params = params
            self.server.received.set()

    def log_message(self, format: str, *args: object) -> None:
        """Silenced: the request line holds the authorization code."""


def enrol(
    *,
    participant_id: str,
    app: OAuthApp,
    store: TokenStore,
    announce: Callable[[str], None],
    port: int = 8765,
    timeout_s: float = 300.0,
    auth_params: dict[str, str] | None = None,
    check_gone: bool = False,
) -> Enrolment:
    """Run the consent flow for one participant and store the resulting tokens.

    ``announce(url)`` shows the consent URL (printed by the CLI; a test can open it).
    ``auth_params`` adds provider-specific parameters (Google: ``access_type=offline``,
    ``prompt=consent``, ``login_hint``). ``check_gone`` first checks that the consent page is
    not turned off (the legacy Fitbit one is), see ``refuse_if_gone``.
    """
    if check_gone:
        refuse_if_gone(app, participant_id)
    server = _CallbackServer(port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
        oauth = app.session(redirect_uri=redirect_uri)
        url, state = app.authorization_url(oauth, **(auth_params or {}))
        announce(url)
        if not server.received.wait(timeout_s):
            raise EnrolmentError(f"no consent callback within {timeout_s:.0f} s; run the command again")
        params = server.params or {}
    finally:
        server.shutdown()
        server.server_close()
    if params.get("state") != state:
        raise EnrolmentError("the callback's state does not match this enrolment (stale or forged link): try again")
    if "error" in params or "code" not in params:
        raise EnrolmentError(f"consent was not given: {params.get('error', 'no code')} "
                             f"{params.get('error_description', '')}".strip())
    try:
        token = app.exchange_code(oauth, params["code"])
    except InvalidGrant as exc:
        if exc.reason == "gone_410":
            raise EnrolmentError(gone_message(participant_id, app.provider, "token endpoint")) from None
        raise EnrolmentError(f"the authorization code was refused ({exc}): run the command again") from None
    scope = token.get("scope") or params.get("scope") or ""
    granted = tuple(scope.split() if isinstance(scope, str) else scope) or tuple(app.scopes)
    missing = tuple(s for s in app.scopes if s not in granted)
    store.save(participant_id, app.provider, token)
    return Enrolment(participant_id, app.provider, granted, missing)
