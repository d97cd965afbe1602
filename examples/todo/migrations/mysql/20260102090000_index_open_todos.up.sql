CREATE INDEX todos_open_idx ON todos (done, created_at);
