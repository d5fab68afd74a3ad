//! Node configuration: editing WSO2's files in place (XML, .properties, site.json) so every
//! value apply does not own stays byte for byte.

pub mod apim26;
pub mod apply_toml;
pub mod default_keys;
pub mod deployment_toml;
mod error;
pub mod install;
pub mod jsonedit;
pub mod properties;
pub mod tomledit;
pub mod xmledit;

pub use error::ApplyError;
