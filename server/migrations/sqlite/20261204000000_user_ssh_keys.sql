-- SSH public keys people register in Account; a key stands in for the password and the
-- security code at the SSH gateway, never for the TOTP step.

CREATE TABLE user_ssh_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- OpenSSH form without comment: `ssh-ed25519 AAAA...`
    public_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX user_ssh_keys_user ON user_ssh_keys (user_id);
