//! Integration tests of the PostgreSQL store against a throwaway PostgreSQL 15 (see
//! `cluster.rs`): the shared conformance suite and verification, group commit and several
//! nodes on one database, and the database's own walls — append-only triggers and grants,
//! row-level security, durable commits, monthly partitions.

mod cluster;
mod rollup;
mod store;
mod walls;
