-- Per-user favourites and recently used servers, shared by the SSH menu and the browser console.

CREATE TABLE user_favourites (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, server_id)
);

CREATE TABLE user_recents (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    used_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, server_id)
);
