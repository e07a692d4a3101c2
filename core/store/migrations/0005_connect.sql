-- 0005_connect.sql: getting into a workspace (docs/design/connect.md).
--
-- Each workspace has one SSH host key, which its agent's SSH server
-- presents (the manifest's ssh_host_key): made the first time an agent of
-- the workspace asks for its manifest and kept for the workspace's life,
-- so `ssh` sees the same host across stops, starts and rebuilds. The
-- private key (OpenSSH's format) is sealed with the database encryption key
-- when one is configured (private_key_key_id; NULL: in clear, see
-- core/store/dbcrypt.h); the public key and its fingerprint are not
-- secret.
CREATE TABLE workspace_ssh_keys (
  workspace_id       UUID        NOT NULL PRIMARY KEY
                     REFERENCES workspaces (id) ON DELETE CASCADE,
  created_at         TIMESTAMPTZ NOT NULL,
  private_key        TEXT        NOT NULL CHECK (private_key <> ''),
  private_key_key_id TEXT,
  -- "ssh-ed25519 AAAA…", as in known_hosts
  public_key         TEXT        NOT NULL,
  -- "SHA256:…", as ssh-keygen -l prints it
  fingerprint        TEXT        NOT NULL
);
