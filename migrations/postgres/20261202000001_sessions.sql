-- Console sessions, shared by every instance on the database and kept
-- across restarts. The token itself is never stored, only its SHA-256.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    credential  TEXT NOT NULL,  -- a digest of the user's password hash at sign-in
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL
);
