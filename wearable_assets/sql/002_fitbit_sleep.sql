-- Sleep stages as intervals. A sleep session belongs to the participant-day on which it ends
-- (the wake date, local time), which is how Fitbit and Google Health attribute sleep.

CREATE TABLE wearables.fitbit_sleep_stages (
    participant_id  text NOT NULL,
    sleep_date      date NOT NULL,        -- local wake date: the participant-day it belongs to
    log_id          text NOT NULL,        -- provider's id of the sleep session
    stage           text NOT NULL,        -- wake | light | deep | rem | asleep | restless | awake
    start_ts        timestamptz NOT NULL,
    end_ts          timestamptz NOT NULL,
    is_short        boolean NOT NULL DEFAULT false,  -- legacy shortData (short wakes)
    is_main_sleep   boolean,
    source          text NOT NULL,
    PRIMARY KEY (participant_id, sleep_date, log_id, start_ts, stage, is_short),
    CHECK (end_ts > start_ts)
);
