-- migrate:up
CREATE TABLE user (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
-- migrate:down
DROP TABLE user;
