//! The output directory: its layout, atomic 0600 writes, the lock, inventory.json and
//! secrets.toml. Knows nothing of WSO2 rules or certificate content.

pub mod fsio;
pub mod inventory;
pub mod layout;
pub mod node_toml;
pub mod secrets;
