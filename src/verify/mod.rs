//! Verify: read a generated set back with checks of its own. Never trusts the code that wrote it.

pub mod hostname;
