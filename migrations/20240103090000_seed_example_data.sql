-- A data migration: rows the app expects to exist.
-- migrate:up
INSERT INTO author (id, name) VALUES (1, 'Ursula K. Le Guin'), (2, 'Octavia E. Butler');
INSERT INTO book (id, author_id, title, year) VALUES
    (1, 1, 'The Dispossessed', 1974),
    (2, 1, 'The Left Hand of Darkness', 1969),
    (3, 2, 'Kindred', 1979);
INSERT INTO review (book_id, stars, body) VALUES
    (1, 5, 'An ambiguous utopia; still current.'),
    (3, 5, 'Unputdownable; read it twice.');

-- migrate:down
DELETE FROM review WHERE book_id IN (1, 3);
DELETE FROM book WHERE id IN (1, 2, 3);
DELETE FROM author WHERE id IN (1, 2);
