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
    -- a label always comes with the time it was given (redefined below once labels could be "not a digit")
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
-- client_network / feedback_network: the network (IPv4 /24, IPv6 /48) the prediction and the label came from: the
-- poisoning screen of `make retrain` counts networks as well as browsers (a cookie is free, a network is not).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS client_network cidr;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS feedback_network cidr;
-- reason: why the model refused the drawing (as numbers.reason says why no number was read).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS reason text;

-- The operator's review of a label (the review queue on the admin page, app/review.py). An anonymous browser's label
-- is a suggestion: one that disagrees with the answer trains only once the operator approved it; 'rejected' never
-- trains; NULL: not reviewed. A changed label is a new suggestion (the trigger below clears the review).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS review text;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS reviewed_at timestamptz;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS reviewed_by text;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_review_values_check') THEN
        -- a review is of a label, dated and signed; no review at all is the common case
        ALTER TABLE predictions ADD CONSTRAINT predictions_review_values_check
            CHECK (review IS NULL OR (review IN ('approved', 'rejected') AND true_digit IS NOT NULL
                                      AND reviewed_at IS NOT NULL AND reviewed_by IS NOT NULL)) NOT VALID;
    END IF;
END $$;
-- The label "not a digit": the user says the drawing is no digit at all (a confirmed refusal, or "This is not a digit"
-- on an answered digit). Why a column of its own beside true_digit rather than a sentinel in true_digit (-1, 10):
-- every reader of true_digit -- the confusion matrix, per-digit accuracy, `make retrain`'s digit fine-tune --
-- counts digits 0..9, and with a sentinel each would have to learn to leave it out; with a
-- column, a not-a-digit label is invisible to them, so it can never become a digit training row (it is for the refusal
-- head). TRUE: labelled not a digit; NULL: labelled a digit (true_digit) or not labelled. A label is one or the other.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS labelled_not_a_digit boolean;
DO $$
BEGIN
    -- A label and its time now come with either kind of label: the first definitions of these two constraints knew
    -- only true_digit, so they are replaced (by name) where an older database still has them.
    IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
               AND conname = 'predictions_feedback_check'
               AND pg_get_constraintdef(oid) NOT LIKE '%labelled_not_a_digit%') THEN
        ALTER TABLE predictions DROP CONSTRAINT predictions_feedback_check;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_feedback_check') THEN
        -- a label always comes with the time it was given
        ALTER TABLE predictions ADD CONSTRAINT predictions_feedback_check
            CHECK ((true_digit IS NULL AND labelled_not_a_digit IS NULL) = (feedback_at IS NULL));
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_label_kind_check') THEN
        -- one label: a digit, or not a digit (never both, never FALSE: a digit label says that already)
        ALTER TABLE predictions ADD CONSTRAINT predictions_label_kind_check
            CHECK (labelled_not_a_digit IS NULL OR (labelled_not_a_digit AND true_digit IS NULL));
    END IF;
    IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
               AND conname = 'predictions_review_values_check'
               AND pg_get_constraintdef(oid) NOT LIKE '%labelled_not_a_digit%') THEN
        ALTER TABLE predictions DROP CONSTRAINT predictions_review_values_check;
        ALTER TABLE predictions ADD CONSTRAINT predictions_review_values_check
            CHECK (review IS NULL OR (review IN ('approved', 'rejected')
                                      AND (true_digit IS NOT NULL OR labelled_not_a_digit IS TRUE)
                                      AND reviewed_at IS NOT NULL AND reviewed_by IS NOT NULL)) NOT VALID;
    END IF;
END $$;
CREATE OR REPLACE FUNCTION predictions_label_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- whichever path changes a label (a single drawing, a number's digit, a journal replay), the operator's review
    -- was of the old label: the new one waits for review again
    IF (NEW.true_digit IS DISTINCT FROM OLD.true_digit
        OR NEW.labelled_not_a_digit IS DISTINCT FROM OLD.labelled_not_a_digit)
       AND NEW.review IS NOT DISTINCT FROM OLD.review THEN
        NEW.review := NULL;
        NEW.reviewed_at := NULL;
        NEW.reviewed_by := NULL;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS predictions_label_changed ON predictions;
CREATE TRIGGER predictions_label_changed BEFORE UPDATE OF true_digit, labelled_not_a_digit ON predictions
    FOR EACH ROW EXECUTE FUNCTION predictions_label_changed();
-- Whether a label disagrees with the answer: for a drawing answered as a digit, another digit or "not a digit"; for a
-- refusal, any digit, its closest one too ("It is a digit: N" overturns the answer "not a digit"). A confirmed refusal
-- agrees. One definition, used by the review queue's queries (db/review.py) and its index, whose predicate must be the
-- queries' expression word for word to be used; training/screen.py `agrees` is the same rule in Python.
CREATE OR REPLACE FUNCTION predictions_label_contradicts(true_digit smallint, labelled_not_a_digit boolean,
                                                         predicted_digit smallint, not_a_digit boolean)
    RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN true_digit IS NOT NULL THEN true_digit <> predicted_digit OR not_a_digit IS TRUE
                   ELSE coalesce(labelled_not_a_digit AND not_a_digit IS NOT TRUE, false) END $$;
-- The review queue: labels that disagree with the answer and wait for review, oldest first. An index's predicate
-- cannot be changed, and an IMMUTABLE function in it is never evaluated again for the rows already indexed, so each
-- new rule comes with a function and an index of new names, and the old ones go: predictions_review_queue_idx knew
-- only digit labels; predictions_suggestions_idx (on predictions_label_disagrees) let a refusal labelled its closest
-- digit agree.
DROP INDEX IF EXISTS predictions_review_queue_idx;
DROP INDEX IF EXISTS predictions_suggestions_idx;
DROP FUNCTION IF EXISTS predictions_label_disagrees(smallint, boolean, smallint, boolean);
CREATE INDEX IF NOT EXISTS predictions_pending_labels_idx
    ON predictions (id)
    WHERE review IS NULL
      AND predictions_label_contradicts(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit);

-- Numbers: several digits written in one drawing and read together (X-Read: number, README "Numbers").
--
-- Why each digit is ALSO a row of `predictions` (its crop of the drawing in canvas_png, cut by its box) rather than
-- an entry in a table of its own: everything that reads drawings -- the browser's accuracy, the stats per digit and
-- the confusion matrix, the admin's compare mode, and above all `make retrain`'s labelled feedback with its poisoning
-- screen per browser and network -- then sees a number's digits exactly like single drawings, through the queries
-- that exist, with no second path that could drift (a corrected digit is a labelled drawing like any other).
-- `numbers` keeps what belongs to the whole: the drawing as sent, the number read, the number the user typed.
-- A digit row points at its number (number_id) and says where it sits: position (0 = leftmost) and box
-- ([left, top, right, bottom] in the whole drawing's pixels). The page's history lists a number once, not its digits.
CREATE TABLE IF NOT EXISTS numbers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id       uuid        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    browser_id       text        NOT NULL,
    model_name       text        NOT NULL,
    model_version    text        NOT NULL,
    number           text,
    not_a_digit      boolean     NOT NULL,
    reason           text,
    canvas_png       bytea       NOT NULL,
    latency_ms       real        NOT NULL,
    client_network   cidr,
    true_number      text,
    feedback_at      timestamptz,
    feedback_network cidr,
    CONSTRAINT numbers_request_id_key UNIQUE (request_id),
    -- digits only, never empty ('0089' keeps its zeros, hence text); NULL when no number could be read
    CONSTRAINT numbers_number_check CHECK (number ~ '^[0-9]{1,64}$'),
    CONSTRAINT numbers_true_number_check CHECK (true_number ~ '^[0-9]{1,10}$'),
    CONSTRAINT numbers_feedback_check CHECK ((true_number IS NULL) = (feedback_at IS NULL)),
    CONSTRAINT numbers_latency_ms_check CHECK (latency_ms >= 0)
);

-- A digit of a number in `predictions` (NULL for single drawings and rows written before numbers existed).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS number_id bigint;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS position smallint;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS box double precision[];
-- Constraints by name, added when missing (ADD COLUMN IF NOT EXISTS ... REFERENCES would not be idempotent).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_number_id_fkey') THEN
        ALTER TABLE predictions ADD CONSTRAINT predictions_number_id_fkey
            FOREIGN KEY (number_id) REFERENCES numbers (id);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'predictions'::regclass
                   AND conname = 'predictions_number_digit_check') THEN
        -- a digit of a number has its position and box; a single drawing has neither
        ALTER TABLE predictions ADD CONSTRAINT predictions_number_digit_check
            CHECK ((number_id IS NULL) = (position IS NULL) AND (number_id IS NULL) = (box IS NULL)
                   AND position >= 0 AND cardinality(box) = 4 AND array_ndims(box) = 1
                   AND array_position(box, NULL) IS NULL) NOT VALID;
    END IF;
END $$;
-- One row per place in a number (also what finds a number's digits).
CREATE UNIQUE INDEX IF NOT EXISTS predictions_number_position_idx
    ON predictions (number_id, position) WHERE number_id IS NOT NULL;

-- History page: one browser's rows, newest first (id breaks ties between rows of the same instant).
CREATE INDEX IF NOT EXISTS predictions_browser_history_idx
    ON predictions (browser_id, created_at DESC, id DESC);
-- Stats page: accuracy per model version.
CREATE INDEX IF NOT EXISTS predictions_model_version_idx
    ON predictions (model_version);
-- Stats page: accuracy, per-digit accuracy and the confusion matrix only read labelled rows.
CREATE INDEX IF NOT EXISTS predictions_labelled_idx
    ON predictions (true_digit, predicted_digit) WHERE true_digit IS NOT NULL;

-- History page: one browser's numbers, newest first (merged with its single drawings).
CREATE INDEX IF NOT EXISTS numbers_browser_history_idx
    ON numbers (browser_id, created_at DESC, id DESC);

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
    'When the label (true_digit or labelled_not_a_digit) was last set; a user may change their answer.';
COMMENT ON COLUMN predictions.labelled_not_a_digit IS
    'TRUE when the user says the drawing is not a digit (true_digit is then NULL); NULL otherwise. Never a digit '
    'training row: retraining teaches it to the refusal head only, after the same review as a digit label.';
COMMENT ON COLUMN predictions.canvas_png IS
    'The original drawing as PNG, kept for future fine-tuning and for saliency maps.';
COMMENT ON COLUMN predictions.preview_png IS
    'The 28x28 image the model actually saw (after preprocessing), when the server returned it.';
COMMENT ON COLUMN predictions.not_a_digit IS
    'True when the model answered "not a digit" (predicted_digit is then the closest digit), false when it answered '
    'a digit, NULL for rows written before versions could refuse.';
COMMENT ON COLUMN predictions.reason IS
    'Why the model refused the drawing (e.g. "looks like several digits"); NULL when it answered a digit, and for '
    'rows written before the reason was kept.';
COMMENT ON COLUMN predictions.client_network IS
    'The network (IPv4 /24, IPv6 /48) of the address that asked for the prediction; NULL when unknown. The full '
    'address is not kept.';
COMMENT ON COLUMN predictions.feedback_network IS
    'The network (IPv4 /24, IPv6 /48) of the address that gave the label; NULL when unknown or unlabelled.';
COMMENT ON COLUMN predictions.latency_ms IS
    'Time the prediction request took, measured by the web app.';
COMMENT ON TABLE numbers IS
    'One row per drawing of several digits read as a number. Each digit is also a row of predictions (its crop, '
    'number_id, position, box), so the stats and retraining see the digits like any drawing.';
COMMENT ON COLUMN numbers.number IS
    'The digits read, left to right, as text (leading zeros kept); NULL when no number could be read (reason says '
    'why, not_a_digit is true).';
COMMENT ON COLUMN numbers.true_number IS
    'The number the user says they wrote (typed whole, or the reading with the digits they corrected); NULL until '
    'given. When it has as many digits as were read, each digit row gets its digit as true_digit.';
COMMENT ON COLUMN numbers.canvas_png IS
    'The whole drawing as sent; each digit row of predictions keeps its crop.';
COMMENT ON COLUMN predictions.number_id IS
    'The number this digit belongs to (numbers.id); NULL for a single drawing.';
COMMENT ON COLUMN predictions.position IS
    'Where this digit sits in its number: 0 for the leftmost; NULL for a single drawing.';
COMMENT ON COLUMN predictions.box IS
    'This digit''s ink in the number''s drawing, [left, top, right, bottom] in its pixels; canvas_png is the crop of '
    'that box with a blank margin. NULL for a single drawing.';
COMMENT ON COLUMN predictions.review IS
    'The operator''s review of the label: approved (it may train), rejected (it never trains), NULL (not reviewed: a '
    'label that disagrees with the answer is then only a suggestion). Cleared when the label changes.';
