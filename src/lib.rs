//! rebound's service side: the gRPC API (generated from `proto/`), the server over the engine,
//! the rule state it swaps atomically, and where rules come from. The binary (`main.rs`) wires
//! these to the command line.
#![forbid(unsafe_code)]

pub mod codec;
pub mod health;
pub mod rules;
pub mod server;

/// Types and clients generated from `proto/rebound/v1/rebound.proto`.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("rebound.v1");

    /// The encoded descriptor set of `proto/`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rebound_descriptor.bin"));
}
