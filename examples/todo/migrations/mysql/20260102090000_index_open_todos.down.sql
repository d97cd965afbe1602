DROP INDEX todos_open_idx ON todos;
