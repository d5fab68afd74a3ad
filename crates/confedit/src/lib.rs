//! confedit: lossless editors for configuration files. Every byte an edit does not touch stays
//! as it was: comments, formatting, element and key order, line endings, encodings.
//!
//! - [`xmledit`]: find XML elements by a small path language and set their text or attributes
//!   ([`XmlDoc`], [`Edits`]).
//! - [`properties`]: Java `.properties` files, ISO-8859-1, set a key's value in place
//!   ([`Properties`]).
//! - [`jsonedit`]: set a string member of a JSON object in place ([`jsonedit::set_string`]).
//! - [`tomledit`]: merge the tables of a patch into a TOML document ([`tomledit::merge`]),
//!   following caller-given rules for arrays of tables and values to keep.
//!
//! The editors know nothing of any product: which file, which key and which value are the
//! caller's business. Errors are typed and never hold file names (the caller knows the file).
//!
//! ```
//! use confedit::{Edits, XmlDoc};
//!
//! let doc = XmlDoc::parse("<a>\n  <!-- keep me -->\n  <b>old</b>\n</a>\n").unwrap();
//! let mut edits = Edits::new(&doc);
//! edits.set_text("a/b", "new").unwrap();
//! let (text, changes) = edits.apply().unwrap();
//! assert_eq!(text, "<a>\n  <!-- keep me -->\n  <b>new</b>\n</a>\n");
//! assert_eq!(changes[0].old.as_deref(), Some("old"));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod jsonedit;
pub mod properties;
pub mod tomledit;
pub mod xmledit;

pub use jsonedit::JsonEditError;
pub use properties::{Properties, PropertyChange};
pub use tomledit::{ArrayRule, MergeError, Merged, Rules};
pub use xmledit::{Change, EditError, Edits, XmlDoc, XmlError};
