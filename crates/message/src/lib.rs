//! Message header work done at reception: reading the X-headers petrel honours, stripping
//! them, and adding the trace and identity headers an MTA owes every message.
//!
//! Everything works on raw bytes, so a message with an odd charset or 8-bit body passes
//! through untouched except for the headers that are deliberately edited.

mod address;
mod headers;
mod jobid;

pub use address::{address_domain, header_address};
pub use headers::{HeaderEdit, Headers};
pub use jobid::job_id_safe;
