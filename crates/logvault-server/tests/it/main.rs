//! HTTP-level integration tests of logvault's server: the access matrix, bad input, ingest
//! semantics, reads and the operational endpoints, through `app(state).oneshot(..)` except
//! `socket`, which needs a real TCP connection.

mod access;
mod bad_input;
mod ingest;
mod ops;
mod parsers;
mod reads;
mod socket;
mod support;
mod viewed;
mod web;
