-- stowage:no-transaction
CREATE INDEX CONCURRENTLY todos_open_idx ON todos (created_at) WHERE NOT done;
