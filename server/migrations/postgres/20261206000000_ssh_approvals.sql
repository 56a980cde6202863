-- SSH sign-ins approved in a browser: the gateway shows a one-time code, the person opens it
-- in a browser signed in through SAML and approves. Rows are shared by every node, so the SSH
-- connection and the browser may reach different nodes.

CREATE TABLE ssh_approvals (
    -- SHA-256 of the code; the code itself is only ever on the person's screen.
    code_hash TEXT PRIMARY KEY,
    -- The login typed in the SSH client, and the server named with it, if any.
    login TEXT NOT NULL,
    target TEXT,
    client_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- pending, approved, denied or used (taken by the SSH connection; never again).
    state TEXT NOT NULL,
    -- Who decided, and the web session (its hash) that the SSH connection then depends on.
    decided_by BIGINT,
    session_hash TEXT,
    decided_at BIGINT
);
