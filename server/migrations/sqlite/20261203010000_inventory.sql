-- The vault's key check, user groups, server groups (a tree), servers and access grants.

-- One row: a value sealed under the vault master key, opened at start to detect a wrong key.
CREATE TABLE vault_meta (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    check_value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE user_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE user_group_members (
    group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

-- path is the full slash-separated name (prod/web): unique, and what people type.
CREATE TABLE server_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id BIGINT REFERENCES server_groups (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    group_id BIGINT NOT NULL REFERENCES server_groups (id) ON DELETE RESTRICT,
    host TEXT NOT NULL,
    port BIGINT NOT NULL DEFAULT 22,
    login TEXT NOT NULL,
    description TEXT,
    auth_kind TEXT NOT NULL CHECK (auth_kind IN ('password', 'private_key', 'gateway_key')),
    -- Sealed by the vault, bound to this server's id; never shown back.
    secret_sealed TEXT,
    passphrase_sealed TEXT,
    -- Pinned host key of the target, in OpenSSH public-key format.
    host_key TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX servers_group_id ON servers (group_id);

-- Exactly one grantee (a user or a user group) and exactly one target (a server group, with
-- everything below it, or a single server).
CREATE TABLE grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    user_group_id BIGINT REFERENCES user_groups (id) ON DELETE CASCADE,
    server_group_id BIGINT REFERENCES server_groups (id) ON DELETE CASCADE,
    server_id BIGINT REFERENCES servers (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (user_group_id IS NULL)),
    CHECK ((server_group_id IS NULL) <> (server_id IS NULL))
);
CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_user_group_id ON grants (user_group_id);
