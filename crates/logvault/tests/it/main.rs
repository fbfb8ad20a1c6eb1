//! End-to-end tests of the `logvault` binary: the real process, its CLI, and its HTTP API
//! over real sockets, including kill -9 and SIGTERM mid-ingest.

mod bench;
mod browser;
mod cli;
mod client;
mod crash;
mod demo;
mod http;
mod multinode;
mod openapi;
mod otlp;
mod peers;
#[path = "../../../logvault-postgres/tests/it/cluster.rs"]
mod pg_cluster;
mod privacy;
mod retention;
mod server;
mod siem;
mod terminal;
mod tls;
