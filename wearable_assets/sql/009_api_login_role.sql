-- The read API's own database login (wearable_assets/serving): wearables_api.
--
-- The API used to log in as the pipeline's user and narrow itself with SET ROLE; any statement
-- on that connection could RESET ROLE and get the pipeline's rights back (writes, token
-- ciphertext). A login role that holds nothing but SELECT has nothing to get back: it is not a
-- member of any role (so SET ROLE / RESET ROLE reach only itself), not a superuser (so SET
-- SESSION AUTHORIZATION is refused), owns nothing, and never gets INSERT/UPDATE/DELETE/TRUNCATE.
--
-- What it reads: every table and view of the wearables schema, now and later (default
-- privileges of the migrating user, who creates every later table), except the token table,
-- which is revoked explicitly. /participants needs the authorisation state of each participant,
-- which lives beside the token ciphertext, so it reads the view wearables.auth_states below
-- (owner's rights, no token columns) instead of the table.
--
-- No password here (this file is in git): the project-local server trusts loopback logins; a
-- real deployment sets one (ALTER ROLE wearables_api PASSWORD ...) and passes it through its own
-- secret in WEARABLES_API_DSN (docs/serving.md, "Database login").
--
-- Roles are cluster-wide while this migration runs once per database, possibly in parallel on
-- several databases: creation tolerates a concurrent twin, and attributes/memberships are only
-- altered when wrong (two concurrent ALTERs of one role fail). A migrating user that may not
-- create roles gets a NOTICE; a DBA then runs the statements given in docs/serving.md.

-- Authorisation state without the tokens. A view runs with its owner's rights (the migrating
-- user), so the API needs no privilege at all on wearables.oauth_tokens.
CREATE VIEW wearables.auth_states WITH (security_invoker = false) AS
SELECT participant_id, provider, auth_state, reconsent_reason
  FROM wearables.oauth_tokens;
COMMENT ON VIEW wearables.auth_states IS
    'Authorisation state per participant and provider, without token columns: what the read API may see';

DO $$
DECLARE
    membership record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wearables_api') THEN
        BEGIN
            CREATE ROLE wearables_api LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'wearables_api not created (no CREATEROLE privilege); see docs/serving.md, "Database login"';
                RETURN;
        END;
    END IF;

    -- A role of that name made by hand may carry more: bring it to exactly this.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wearables_api'
                  AND (rolsuper OR rolinherit OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
                       OR NOT rolcanlogin)) THEN
        BEGIN
            ALTER ROLE wearables_api LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'could not reset the attributes of wearables_api; the API refuses to serve until a DBA does';
        END;
    END IF;
    FOR membership IN
        SELECT g.rolname FROM pg_auth_members m
          JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
         WHERE u.rolname = 'wearables_api'
    LOOP
        BEGIN
            EXECUTE format('REVOKE %I FROM wearables_api', membership.rolname);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE NOTICE 'could not revoke % from wearables_api; the API refuses to serve until a DBA does',
                membership.rolname;
        END;
    END LOOP;

    REVOKE CREATE ON SCHEMA wearables FROM wearables_api;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA wearables FROM wearables_api;
    GRANT USAGE ON SCHEMA wearables TO wearables_api;
    GRANT SELECT ON ALL TABLES IN SCHEMA wearables TO wearables_api;
    -- Tables and views that later migrations (run by this same user) create are readable too ...
    ALTER DEFAULT PRIVILEGES IN SCHEMA wearables GRANT SELECT ON TABLES TO wearables_api;
    -- ... but never the tokens: no table privilege, and with it every column privilege, is left.
    REVOKE ALL ON wearables.oauth_tokens FROM wearables_api;
    GRANT SELECT ON wearables.auth_states TO wearables_api;
END
$$;
