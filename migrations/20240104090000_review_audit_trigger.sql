-- A trigger whose body holds several statements (and a string with a semicolon):
-- SQLite's own parser splits the file, so this works as written.
-- migrate:up
CREATE TABLE review_audit (
    id        INTEGER PRIMARY KEY,
    review_id INTEGER NOT NULL,
    note      TEXT NOT NULL,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TRIGGER review_changed AFTER UPDATE OF stars ON review
BEGIN
    INSERT INTO review_audit (review_id, note)
        VALUES (NEW.id, 'stars: ' || OLD.stars || ' -> ' || NEW.stars || ';');
    UPDATE review SET body = body || ' (edited)' WHERE id = NEW.id AND body NOT LIKE '%(edited)';
END;

-- migrate:down
DROP TRIGGER review_changed;
DROP TABLE review_audit;
