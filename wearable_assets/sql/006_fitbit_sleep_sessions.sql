-- Every Fitbit sleep session of a participant-day, with or without stages. A session whose
-- stages are not computed yet (Google's metadata.processed = false, the legacy API's "pending"),
-- that the provider will not stage (Google's stagesStatus REJECTED_NAP / REJECTED_COVERAGE ...)
-- or that is stored without levels leaves no row in wearables.fitbit_sleep_stages; this table
-- keeps the night visible, with the reason. Same day rule as the stages: the local wake date.

CREATE TABLE wearables.fitbit_sleep_sessions (
    participant_id  text NOT NULL,
    sleep_date      date NOT NULL,        -- local wake date: the participant-day it belongs to
    log_id          text NOT NULL,        -- provider's id of the sleep session (= fitbit_sleep_stages.log_id)
    start_ts        timestamptz NOT NULL,
    end_ts          timestamptz NOT NULL,
    is_main_sleep   boolean,
    sleep_type      text,                 -- provider's type, lower case: stages | classic (NULL: not given)
    state           text NOT NULL,        -- staged | pending | rejected_nap | rejected_coverage | ... | no_stages
    stages_status   text,                 -- Google Health metadata.stagesStatus as sent (SUCCEEDED, REJECTED_NAP, ...)
    info_code       smallint,             -- legacy infoCode: 0 enough data, 1 too little HR, 2 under 3 h, 3 server issue
    minutes_asleep  integer,              -- as the provider states it, when it does
    stage_rows      integer NOT NULL,     -- rows this session has in fitbit_sleep_stages
    source          text NOT NULL,
    PRIMARY KEY (participant_id, sleep_date, log_id),
    CHECK (end_ts >= start_ts)
);
