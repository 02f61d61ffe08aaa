-- migrate:up
ALTER TABLE book ADD COLUMN status TEXT NOT NULL DEFAULT 'unread'
    CHECK (status IN ('unread', 'reading', 'read'));
UPDATE book SET status = 'read' WHERE id IN (SELECT book_id FROM review);

-- migrate:down
ALTER TABLE book DROP COLUMN status;
