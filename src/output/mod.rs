//! The output directory: its layout, atomic 0600 writes, the lock, the commit journal,
//! inventory.json and secrets.toml. Knows nothing of WSO2 rules or certificate content.

pub(crate) mod fsio;
pub(crate) mod inventory;
pub(crate) mod journal;
pub(crate) mod layout;
pub(crate) mod node_toml;
pub(crate) mod secrets;
