//! The gateway proper: what agents may do on the user's behalf. It owns the agents'
//! tools and their path from a call to a result (filter, approval, sandbox, path
//! guard). It never speaks HTTP and never stores anything itself; the server and the
//! CLI call in, and it calls down into `policy`, `audit` and `sandbox`.

pub mod approval;
pub mod paths;
pub mod providers;
pub mod tools;
