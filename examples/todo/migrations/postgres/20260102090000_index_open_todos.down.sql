-- stowage:no-transaction
DROP INDEX CONCURRENTLY todos_open_idx;
