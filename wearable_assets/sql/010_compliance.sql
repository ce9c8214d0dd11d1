-- Compliance for study coordinators (wearable_assets/compliance): since when a token is in its
-- state, the re-consent ledger, and the alert results the daily alert asset stores.

-- Since when the authorisation is in its current state. updated_at moves on every refresh, so it
-- cannot say "needs re-consent since ..."; a trigger sets this column only when auth_state
-- changes, whichever code path writes the row.
ALTER TABLE wearables.oauth_tokens ADD COLUMN IF NOT EXISTS auth_state_since timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION wearables.oauth_tokens_state_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.auth_state IS DISTINCT FROM OLD.auth_state THEN
        NEW.auth_state_since := now();
    ELSE
        NEW.auth_state_since := OLD.auth_state_since;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER oauth_tokens_state_since BEFORE UPDATE ON wearables.oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION wearables.oauth_tokens_state_since();

-- The API's view of the tokens gains the time of the last state change (still no token column).
CREATE OR REPLACE VIEW wearables.auth_states WITH (security_invoker = false) AS
SELECT participant_id, provider, auth_state, reconsent_reason, auth_state_since
  FROM wearables.oauth_tokens;

-- Re-consent ledger: where each participant stands on the way back to a working grant, per
-- provider, and every step with its time and reason. Written by the token store when the
-- pipeline finds a grant dead (oauth/store.py) and moved forward by enrolment and the
-- `wearable-assets reconsent` command (compliance/ledger.py holds the vocabulary).
CREATE TABLE wearables.reconsent_ledger (
    participant_id  text NOT NULL REFERENCES wearables.participants ON DELETE CASCADE,
    provider        text NOT NULL CHECK (provider IN ('google_health', 'fitbit_legacy')),
    state           text NOT NULL CHECK (state IN ('needs_reconsent', 'legacy_fitbit_token',
                        'invited_to_google_health', 'consented', 'history_backfilled', 'verified')),
    reason          text NOT NULL,
    since           timestamptz NOT NULL DEFAULT now(),
    opened_at       timestamptz NOT NULL DEFAULT now(),   -- when this re-consent episode began
    PRIMARY KEY (participant_id, provider)
);

CREATE TABLE wearables.reconsent_transitions (
    transition_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    participant_id  text NOT NULL REFERENCES wearables.participants ON DELETE CASCADE,
    provider        text NOT NULL,
    from_state      text,
    to_state        text NOT NULL,
    reason          text NOT NULL,
    detail          text,
    at              timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reconsent_transitions_participant ON wearables.reconsent_transitions (participant_id, provider, at);

-- One row per participant, rule and evaluation of the daily alert asset (compliance/alerts.py),
-- with the thresholds it was evaluated against, so a result can be explained later.
CREATE TABLE wearables.compliance_alerts (
    evaluated_on    date NOT NULL,          -- the day the rules looked back from (yesterday is evaluated_on - 1)
    participant_id  text NOT NULL,
    study_id        text NOT NULL,
    rule            text NOT NULL,
    fired           boolean NOT NULL,
    value           double precision,
    threshold       double precision,
    detail          text,
    evaluated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (evaluated_on, participant_id, rule)
);
