//! The output directory: its layout, atomic 0600 writes, the lock, the commit journal,
//! inventory.json and secrets.toml. Knows nothing of WSO2 rules or certificate content.

pub mod fsio;
pub mod inventory;
pub mod journal;
pub mod layout;
pub mod node_toml;
pub mod secrets;
