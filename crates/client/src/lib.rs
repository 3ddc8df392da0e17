//! tern-client (in progress).
#![allow(dead_code)]
pub mod error;
pub mod message;
pub mod options;
mod protocol;
mod url;
pub use error::*;
pub use message::*;
pub use options::*;
pub use tern_codec::{ProtocolVersion, QoS};
