-- migrate:up
CREATE TABLE book (
    id        INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE,
    title     TEXT NOT NULL,
    year      INTEGER
);
CREATE INDEX book_author ON book(author_id);

CREATE TABLE review (
    id      INTEGER PRIMARY KEY,
    book_id INTEGER NOT NULL REFERENCES book(id) ON DELETE CASCADE,
    stars   INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    body    TEXT NOT NULL DEFAULT ''
);

-- migrate:down
DROP TABLE review;
DROP TABLE book;
