//! HTTP-level integration tests of logvault's server: the access matrix, bad input, ingest
//! semantics, reads and the operational endpoints, through `app(state).oneshot(..)` except
//! `socket` and `listener`, which need real TCP connections.

mod access;
mod bad_input;
mod groups;
mod ingest;
mod listener;
mod openapi;
mod ops;
mod parsers;
mod reads;
mod socket;
mod support;
mod viewed;
mod web;
