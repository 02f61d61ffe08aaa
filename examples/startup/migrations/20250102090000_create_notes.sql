-- migrate:up
CREATE TABLE note (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES user(id),
    body TEXT NOT NULL
);
-- migrate:down
DROP TABLE note;
