-- 0003_dbcrypt.sql: encryption of secrets at rest (core/store/dbcrypt.h,
-- docs/security.md "Database encryption").
--
-- Every key that has sealed values, by its id (7 hex digits of SHA-256 of
-- "aes256gcm" and the key, as Coder's dbcrypt_keys digests). `test` is a
-- known text sealed under the key: start-up opens it to prove the
-- configured key is the one the database was written with. A key is
-- revoked once `atrium db encrypt rotate|decrypt|delete` has left no value
-- under it; a revoked key is never primary again.
CREATE TABLE dbcrypt_keys (
  key_id     TEXT        NOT NULL PRIMARY KEY CHECK (key_id <> ''),
  state      TEXT        NOT NULL CHECK (state IN ('active', 'revoked')),
  created_at TIMESTAMPTZ NOT NULL,
  revoked_at TIMESTAMPTZ,
  test       TEXT        NOT NULL
);

-- The key that sealed the value beside it; NULL when it is in clear (as
-- user_links.oauth_*_token_key_id since 0001).
ALTER TABLE workspace_build_parameters ADD COLUMN value_key_id TEXT;
ALTER TABLE workspace_builds ADD COLUMN provisioner_state_key_id TEXT;
ALTER TABLE workspace_resource_metadata ADD COLUMN value_key_id TEXT;
