//! The gateway proper: what agents may do on the user's behalf. It owns the agents'
//! tools and their path from a call to a result (filter, approval, sandbox, path
//! guard), the agents, the chats with their visibility rules, and usage accounting
//! (each stored through `store`'s typed trees) with the per-token limits judged on it.
//! It never speaks HTTP; the server and the CLI call in, and it calls down into
//! `policy`, `audit`, `sandbox` and `store`.

pub mod agent_loop;
pub mod agents;
pub mod approval;
pub mod channels;
pub mod chats;
pub mod mcp;
pub mod paths;
pub mod providers;
pub mod quota;
pub mod tools;
pub mod upstreams;
pub mod usage;
