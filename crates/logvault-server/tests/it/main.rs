//! HTTP-level integration tests of logvault's server: the access matrix, bad input, ingest
//! semantics, reads and the operational endpoints, all through `app(state).oneshot(..)`.

mod access;
mod bad_input;
mod ingest;
mod ops;
mod reads;
mod support;
mod viewed;
mod web;
