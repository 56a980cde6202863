-- Users, web sessions, sign-in failure counters and runtime settings.
-- Integers are 64-bit everywhere and booleans are 0/1 integers, so that the same queries and
-- row types work on SQLite and PostgreSQL. Times are Unix seconds (UTC).

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    -- Lower-cased copy of email: emails are unique regardless of case.
    email_lower TEXT UNIQUE,
    display_name TEXT,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'saml')),
    password_hash TEXT,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    security_code_hash TEXT,
    totp_secret TEXT,
    totp_pending_secret TEXT,
    -- Highest TOTP time step accepted so far: a code is never accepted twice.
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE web_sessions (
    -- SHA-256 of the cookie value: a copy of the database does not hand out live sessions.
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('awaiting_totp', 'active')),
    auth_method TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user_id ON web_sessions (user_id);

CREATE TABLE auth_failures (
    -- 'account:<id>', 'login:<name>' or 'ip:<address>'.
    subject TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
