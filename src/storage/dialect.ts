/** The two SQL dialects storage speaks: SQLite (the default, a file in the data dir) and PostgreSQL. */
export type Dialect = 'sqlite' | 'pg';
