-- API keys let scripts act for a user. Only a hash of each key is stored.
CREATE TABLE user_api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text NOT NULL,
    key_hash      text NOT NULL,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, provider)
);

COMMENT ON COLUMN user_api_keys.key_hash IS 'SHA-256 of the key; the key itself is shown once and never stored.';

-- Each user sees only their own keys when the app sets app.user_id for the session.
ALTER TABLE user_api_keys ENABLE ROW LEVEL SECURITY;

CREATE POLICY user_api_keys_owner ON user_api_keys
    USING (user_id = nullif(current_setting('app.user_id', true), '')::uuid);
