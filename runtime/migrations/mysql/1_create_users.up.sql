-- The users of the documentation's examples.
CREATE TABLE users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name TEXT NOT NULL
);
