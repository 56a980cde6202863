-- Single sign-on bookkeeping shared by every node: the sign-in requests sent to the identity
-- provider (each answered once) and the assertion IDs already accepted (replay protection).

CREATE TABLE saml_requests (
    -- The AuthnRequest ID, also sent as RelayState so the answer finds its request.
    id TEXT PRIMARY KEY,
    -- Local path to open after sign-in.
    return_to TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT,
    -- Set for an administrator's test sign-in: the answer is shown to them, nobody signs in.
    test_for_user BIGINT
);

CREATE TABLE saml_seen_assertions (
    id TEXT PRIMARY KEY,
    -- After this time the assertion is expired anyway and the row may go.
    expires_at BIGINT NOT NULL
);

-- The automatic refresh of the identity provider's metadata: one row. A failed attempt keeps
-- the last good metadata in the settings and records why here.
CREATE TABLE saml_metadata_refresh (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    attempted_at BIGINT NOT NULL,
    succeeded_at BIGINT,
    error TEXT
);

-- Group values the identity provider sends (AWS IAM Identity Center sends group IDs) mapped to
-- Jumpgate user groups. At each SAML sign-in, membership of every mapped user group follows
-- the assertion; user groups that no mapping names are left to the administrators.
CREATE TABLE saml_group_mappings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idp_value TEXT NOT NULL,
    user_group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    UNIQUE (idp_value, user_group_id)
);

-- What the identity provider sent at an administrator's last test sign-in (Settings > SAML),
-- as JSON, so the page can show it without signing anyone in.
CREATE TABLE saml_test_results (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tested_at BIGINT NOT NULL,
    result TEXT NOT NULL
);
