-- migrate:up
-- Fails on a database where two users share an email: SQLite can only tell
-- with the rows there, so this is caught while running, not before.
CREATE UNIQUE INDEX user_email ON user(email);
-- migrate:down
DROP INDEX user_email;
