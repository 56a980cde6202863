-- Single logout: which panel sessions came from which IdP session, and the logout requests we
-- sent (each answered once).

-- One row per panel session signed in through SAML: the subject the IdP named, so that the
-- IdP's logout request can find the sessions to end, and our own request can name it.
CREATE TABLE saml_sessions (
    session_hash TEXT PRIMARY KEY,
    name_id TEXT NOT NULL,
    name_id_format TEXT,
    session_index TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX saml_sessions_by_name_id ON saml_sessions (name_id);

CREATE TABLE saml_logout_requests (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT
);
