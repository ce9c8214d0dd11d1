-- Read-only role for the data API (wearable_assets/serving): SELECT on the wearables schema, nothing else.
-- The API connects with the pipeline's DSN (or its own, WEARABLES_API_DSN) and runs
-- SET ROLE wearables_reader on every connection, so even a bug in it cannot write.
--
-- Roles are cluster-wide while this migration runs once per database: creation is guarded
-- (it may exist from another database, or appear concurrently from a parallel migration), and
-- a migrating user that may not create roles gets a NOTICE instead of a failed migration —
-- a DBA then creates the role and re-grants (docs/serving.md, "Read-only role").

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wearables_reader') THEN
        BEGIN
            CREATE ROLE wearables_reader NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'wearables_reader not created (no CREATEROLE privilege); the API needs it or WEARABLES_API_ROLE';
                RETURN;
        END;
    END IF;

    -- Let the migrating (pipeline) user SET ROLE to it: the API uses the same login by default.
    BEGIN
        EXECUTE format('GRANT wearables_reader TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
        RAISE NOTICE 'could not grant wearables_reader to %', current_user;
    END;

    GRANT USAGE ON SCHEMA wearables TO wearables_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA wearables TO wearables_reader;
    -- Tables that later migrations (run by this same user) create are readable too.
    ALTER DEFAULT PRIVILEGES IN SCHEMA wearables GRANT SELECT ON TABLES TO wearables_reader;
    -- Tokens are ciphertext already, but the API has no business reading them.
    REVOKE SELECT ON wearables.oauth_tokens FROM wearables_reader;
    GRANT SELECT (participant_id, provider, auth_state, reconsent_reason, expires_at, refreshed_at, updated_at)
        ON wearables.oauth_tokens TO wearables_reader;
END
$$;
