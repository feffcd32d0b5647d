-- Users of IdeaForge: one row per account.
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL,
    full_name   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Emails are compared case-insensitively at sign-in.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

COMMENT ON TABLE users IS 'Accounts; one row per person who can sign in.';
COMMENT ON COLUMN users.email IS 'Sign-in address; unique regardless of case.';
