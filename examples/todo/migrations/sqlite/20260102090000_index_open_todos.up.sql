CREATE INDEX todos_open_idx ON todos (created_at) WHERE NOT done;
