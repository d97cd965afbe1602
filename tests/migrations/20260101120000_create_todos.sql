-- The folder the README's examples embed (`embed_migrations!()` reads
-- ./migrations) when they run as doctests of this crate.
CREATE TABLE todos (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT FALSE
);
