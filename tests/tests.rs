//! rebound's one integration-test binary (one link step on a 2-core machine): the CLI, rule
//! validation, conformance to the seed guide, provider replies, properties, and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial;
mod bench;
mod check;
mod cli;
mod cli_messages;
mod cli_report;
mod conformance;
mod evidence;
mod grpc;
mod grpc_messages;
mod grpc_unmatched;
mod hooks;
mod properties;
mod provider_replies;
mod reload;
mod replies;
mod service;
mod sisimai_crosswalk;
mod sisimai_replies;
mod util;
