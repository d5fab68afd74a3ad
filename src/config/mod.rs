//! Node configuration: editing WSO2's files in place (XML, .properties, site.json) so every
//! value apply does not own stays byte for byte.

pub(crate) mod apim26;
pub(crate) mod apply_toml;
pub(crate) mod default_keys;
pub(crate) mod deployment_toml;
mod error;
pub(crate) mod install;

// The lossless editors are the confedit crate (crates/confedit), which knows nothing of WSO2;
// these aliases keep the `crate::config::xmledit::...` paths of the rules that use them.
pub(crate) use confedit::{jsonedit, properties, tomledit, xmledit};

pub use error::ApplyError;
