//! logvault on PostgreSQL (being built).
