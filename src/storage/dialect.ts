/** The two databases voxswitch runs on. */
export type Dialect = 'sqlite' | 'pg';
