-- SQLite cannot add a CHECK constraint to an existing table, so the table is
-- rebuilt: create the new shape, copy, drop the old table, rename.
-- With foreign-key enforcement on, `DROP TABLE book` would fire ON DELETE
-- CASCADE and silently empty `review`. backstop runs every migration with
-- enforcement off and checks foreign keys before commit, so this is safe.
-- migrate:up
CREATE TABLE book_new (
    id        INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE,
    title     TEXT NOT NULL,
    year      INTEGER CHECK (year IS NULL OR year BETWEEN 1450 AND 2100),
    isbn      TEXT UNIQUE
);
INSERT INTO book_new (id, author_id, title, year) SELECT id, author_id, title, year FROM book;
DROP TABLE book;
ALTER TABLE book_new RENAME TO book;
CREATE INDEX book_author ON book(author_id);

-- migrate:down
CREATE TABLE book_old (
    id        INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES author(id) ON DELETE CASCADE,
    title     TEXT NOT NULL,
    year      INTEGER
);
INSERT INTO book_old (id, author_id, title, year) SELECT id, author_id, title, year FROM book;
DROP TABLE book;
ALTER TABLE book_old RENAME TO book;
CREATE INDEX book_author ON book(author_id);
