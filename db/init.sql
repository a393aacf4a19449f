-- Schema of the digit recognizer: one row per prediction, with the user's correction when given.
--
-- Idempotent (IF NOT EXISTS everywhere; COMMENT ON just overwrites), so it is run on every app start
-- (db/store.py apply_schema) and can also be mounted as a docker-entrypoint-initdb.d script.
-- Changing an existing column later needs a migration; this file only ever adds.

CREATE TABLE IF NOT EXISTS predictions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    browser_id      text        NOT NULL,
    model_name      text        NOT NULL,
    model_version   text        NOT NULL,
    predicted_digit smallint    NOT NULL,
    confidence      real        NOT NULL,
    probabilities   real[]      NOT NULL,
    true_digit      smallint,
    feedback_at     timestamptz,
    canvas_png      bytea       NOT NULL,
    preview_png     bytea,
    latency_ms      real        NOT NULL,
    CONSTRAINT predictions_request_id_key UNIQUE (request_id),
    CONSTRAINT predictions_predicted_digit_check CHECK (predicted_digit BETWEEN 0 AND 9),
    CONSTRAINT predictions_confidence_check CHECK (confidence BETWEEN 0 AND 1),
    -- cardinality alone would accept a 2x5 array, hence the dimension check
    CONSTRAINT predictions_probabilities_check
        CHECK (cardinality(probabilities) = 10 AND array_ndims(probabilities) = 1),
    CONSTRAINT predictions_true_digit_check CHECK (true_digit BETWEEN 0 AND 9),
    -- a label always comes with the time it was given
    CONSTRAINT predictions_feedback_check CHECK ((true_digit IS NULL) = (feedback_at IS NULL)),
    CONSTRAINT predictions_latency_ms_check CHECK (latency_ms >= 0)
);

-- Constraints added after the table first shipped: CREATE TABLE IF NOT EXISTS leaves an existing table as it is, so
-- they are added here when missing. NOT VALID: rows written before are not re-checked (a start never fails on old
-- data); every insert and update is.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_probability_values_check') THEN
        -- each in 0..1 (NaN sorts above 1 in PostgreSQL); no NULL element (it would make ALL () unknown, which passes)
        ALTER TABLE predictions ADD CONSTRAINT predictions_probability_values_check
            CHECK (array_position(probabilities, NULL) IS NULL AND 0 <= ALL (probabilities)
                   AND 1 >= ALL (probabilities)) NOT VALID;
    END IF;
END $$;

-- Columns added after the table first shipped (NULL in rows written before).
-- not_a_digit: the model refused the drawing as not one digit; predicted_digit then holds the closest digit.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS not_a_digit boolean;
-- client_network / feedback_network: the network (IPv4 /24, IPv6 /64) the prediction and the label came from: the
-- poisoning screen of `make retrain` counts networks as well as browsers (a cookie is free, a network is not).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS client_network cidr;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS feedback_network cidr;

-- History page: one browser's rows, newest first (id breaks ties between rows of the same instant).
CREATE INDEX IF NOT EXISTS predictions_browser_history_idx
    ON predictions (browser_id, created_at DESC, id DESC);
-- Stats page: accuracy per model version.
CREATE INDEX IF NOT EXISTS predictions_model_version_idx
    ON predictions (model_version);
-- Stats page: accuracy, per-digit accuracy and the confusion matrix only read labelled rows.
CREATE INDEX IF NOT EXISTS predictions_labelled_idx
    ON predictions (true_digit, predicted_digit) WHERE true_digit IS NOT NULL;

-- The operator's choice of default version per model (CLI `python -m app.cli set-default`, or the admin page).
-- TorchServe does not keep it across restarts when started with --ts-config, so the UI re-applies it on start and
-- whenever TorchServe's default differs (ui/context.py).
CREATE TABLE IF NOT EXISTS model_defaults (
    model_name  text        PRIMARY KEY,
    version     text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL
);

-- Failed admin logins per client address (ui/admin.py): after a few free failures, each one doubles the wait before
-- the next attempt from that address (capped); forgotten after an hour without failures. Shared by every UI process.
CREATE TABLE IF NOT EXISTS admin_login_failures (
    address      text        PRIMARY KEY,
    failures     integer     NOT NULL CHECK (failures > 0),
    last_failure timestamptz NOT NULL DEFAULT now()
);

-- Admin sessions (ui/admin.py): a random token made at each login, kept by the browser in an HttpOnly cookie; only its
-- SHA-256 is stored. A 'ticket' is the one-time, short-lived step between the login form and that cookie. Every admin
-- action checks the row (browser, password fingerprint, idle time); logging out deletes it.
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_sha256         bytea       PRIMARY KEY,
    kind                 text        NOT NULL CHECK (kind IN ('ticket', 'session')),
    browser_id           text        NOT NULL,
    password_fingerprint text        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_seen            timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE predictions IS
    'One row per prediction served to a browser. The original drawing (canvas_png) and the user''s correction '
    '(true_digit) are kept on purpose: together they are a labelled data set of real user drawings for future '
    'fine-tuning, and the drawings are the inputs for saliency maps.';
COMMENT ON COLUMN predictions.request_id IS
    'Generated by the client for each prediction request; unique, so a retried insert returns the existing row.';
COMMENT ON COLUMN predictions.browser_id IS
    'Anonymous id kept in the browser; history and corrections are scoped to it.';
COMMENT ON COLUMN predictions.model_version IS
    'Version of the TorchServe model that answered; stats compare versions.';
COMMENT ON COLUMN predictions.probabilities IS
    'Softmax output of the model, index = digit (10 values).';
COMMENT ON COLUMN predictions.true_digit IS
    'The digit the user says they drew (NULL until corrected or confirmed); with canvas_png, the label for '
    'future fine-tuning.';
COMMENT ON COLUMN predictions.feedback_at IS
    'When true_digit was last set; a user may change their answer.';
COMMENT ON COLUMN predictions.canvas_png IS
    'The original drawing as PNG, kept for future fine-tuning and for saliency maps.';
COMMENT ON COLUMN predictions.preview_png IS
    'The 28x28 image the model actually saw (after preprocessing), when the server returned it.';
COMMENT ON COLUMN predictions.not_a_digit IS
    'True when the model answered "not a digit" (predicted_digit is then the closest digit), false when it answered '
    'a digit, NULL for rows written before versions could refuse.';
COMMENT ON COLUMN predictions.client_network IS
    'The network (IPv4 /24, IPv6 /64) of the address that asked for the prediction; NULL when unknown. The full '
    'address is not kept.';
COMMENT ON COLUMN predictions.feedback_network IS
    'The network (IPv4 /24, IPv6 /64) of the address that gave the label; NULL when unknown or unlabelled.';
COMMENT ON COLUMN predictions.latency_ms IS
    'Time the prediction request took, measured by the web app.';
