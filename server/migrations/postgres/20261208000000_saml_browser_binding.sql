-- Ties each sign-in request to the browser that started it: the SHA-256 of a secret that only
-- that browser holds in a cookie. Without it, an answer captured for one browser could be
-- replayed into another (login CSRF). Rows from before this column have NULL and are refused.
ALTER TABLE saml_requests ADD COLUMN browser_hash TEXT;
