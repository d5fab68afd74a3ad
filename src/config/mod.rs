//! Node configuration: editing WSO2's files in place (XML, .properties, site.json) so every
//! value apply does not own stays byte for byte.

pub(crate) mod apim26;
pub(crate) mod apply_toml;
pub(crate) mod default_keys;
pub(crate) mod deployment_toml;
mod error;
pub(crate) mod install;
pub(crate) mod jsonedit;
pub(crate) mod properties;
pub(crate) mod tomledit;
pub(crate) mod xmledit;

pub use error::ApplyError;
