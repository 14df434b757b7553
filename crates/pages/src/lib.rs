//! petrel's web pages, rendered on the server from templates compiled into the binary:
//!
//! - [`signals`]: the Signals dashboard (Health Score, Spam Traps, Engagement Recency,
//!   Summary report, Events search, Integration) on the Signals service's listener;
//! - [`monitor`]: the MTA monitor (status, queues, virtual MTAs, jobs, with pause / resume /
//!   schedule for clients whose `http-access` allows it) on the management port.
//!
//! Both read only through the public HTTP APIs of the service they sit on, called
//! in-process with the query string a curl user would send, and show those requests; so a
//! page never knows more than the API does and every number can be reproduced. Charts are
//! SVG drawn here; the one small script is an optional nicety (tables, forms and charts all
//! work with JavaScript off). Every response carries a Content-Security-Policy that allows
//! only the service's own script and stylesheet. See `docs/signals-pages.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod assets;
mod chart;
mod format;
mod json;
pub mod monitor;
pub mod signals;
mod web;

pub use monitor::{with_monitor, MonitorOptions};
pub use signals::with_pages;
