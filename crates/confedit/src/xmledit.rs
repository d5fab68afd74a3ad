//! Lossless XML editing: find elements by path and splice new values into the original bytes.
//!
//! [`XmlDoc::parse`] runs a small, strict tokenizer over the text and keeps an index of the
//! elements (names, attributes and the byte ranges of their tags and content), comments and text
//! segments. Nothing is re-serialised: [`Edits::apply`] copies the original text and replaces only
//! the byte ranges of the values it changes, so comments, formatting, element order, line endings
//! and every other setting stay byte for byte.
//!
//! Paths are written from the document root element, as local names separated by `/`, each step
//! optionally followed by attribute predicates: `Server/Security/KeyStore/Location`,
//! `axisconfig/transportReceiver[@name='https']/parameter[@name='keystore']/KeyStore/Password`,
//! `Server/Service/Engine/Connector[@port='9443']`. Namespace prefixes and `xmlns` declarations
//! are ignored; `*` matches any element; `[@attr]` only asks for the attribute to be present.
//! A path may match several elements: queries return one value per match, edits apply to each.

use std::ops::Range;

use thiserror::Error;

/// The document could not be read as XML.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmlError {
    /// Malformed XML, at a 1-based line.
    #[error("line {line}: {problem}")]
    Parse {
        /// 1-based line in the document.
        line: usize,
        /// What is wrong.
        problem: Malformed,
    },
}

/// What is malformed in a document ([`XmlError::Parse`]). Element and attribute names are the
/// qualified names as written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A name was expected (after `<`, `</` or in a start tag).
    #[error("expected a name")]
    ExpectedName,
    /// An `&` that starts no well-formed entity or character reference.
    #[error("'&' that does not start an entity or character reference")]
    BadReference,
    /// A second DOCTYPE, or one after the root element.
    #[error("DOCTYPE must come once, before the root element")]
    MisplacedDoctype,
    /// `<!` followed by anything but a comment, CDATA or DOCTYPE.
    #[error("unexpected markup declaration")]
    UnexpectedDeclaration,
    /// The text ends inside an element.
    #[error("element <{element}> (line {line}) is not closed")]
    UnclosedElement {
        /// The element.
        element: String,
        /// 1-based line of its start tag.
        line: usize,
    },
    /// The text holds no element.
    #[error("no root element")]
    NoRoot,
    /// `<!--` without `-->`.
    #[error("comment is not closed (missing -->)")]
    UnclosedComment,
    /// A CDATA section before or after the root element.
    #[error("CDATA section outside the root element")]
    CdataOutsideRoot,
    /// `<![CDATA[` without `]]>`.
    #[error("CDATA section is not closed (missing ]]>)")]
    UnclosedCdata,
    /// `<?` without `?>`.
    #[error("processing instruction is not closed (missing ?>)")]
    UnclosedProcessingInstruction,
    /// `<?xml ...?>` anywhere but at the very start.
    #[error("XML declaration is only allowed at the very start")]
    LateXmlDeclaration,
    /// Non-blank text before or after the root element.
    #[error("text outside the root element")]
    TextOutsideRoot,
    /// `]]>` in character data.
    #[error("']]>' in text")]
    CdataEndInText,
    /// A quoted string in the DOCTYPE is not closed.
    #[error("unterminated quoted string in DOCTYPE")]
    UnterminatedDoctypeString,
    /// `<!DOCTYPE` without its `>`.
    #[error("DOCTYPE is not closed")]
    UnclosedDoctype,
    /// A start tag without its `>`.
    #[error("start tag <{element}> is not closed")]
    UnclosedStartTag {
        /// The element.
        element: String,
    },
    /// Something else than whitespace, `>` or `/>` after a name or attribute in a start tag.
    #[error("expected whitespace, '>' or '/>' in <{element}>")]
    ExpectedTagEnd {
        /// The element.
        element: String,
    },
    /// The same attribute twice in one start tag.
    #[error("duplicate attribute {attr} in <{element}>")]
    DuplicateAttribute {
        /// The attribute.
        attr: String,
        /// The element.
        element: String,
    },
    /// An attribute name without `=`.
    #[error("attribute {attr} of <{element}> has no value")]
    AttributeWithoutValue {
        /// The attribute.
        attr: String,
        /// The element.
        element: String,
    },
    /// An attribute value without quotes.
    #[error("value of attribute {attr} is not quoted")]
    UnquotedAttribute {
        /// The attribute.
        attr: String,
    },
    /// An attribute value without its closing quote.
    #[error("value of attribute {attr} is not closed")]
    UnclosedAttribute {
        /// The attribute.
        attr: String,
    },
    /// A `<` inside an attribute value.
    #[error("'<' in attribute {attr}")]
    LtInAttribute {
        /// The attribute.
        attr: String,
    },
    /// An element after the root element.
    #[error("second root element <{element}>")]
    SecondRoot {
        /// The element.
        element: String,
    },
    /// An end tag without its `>`.
    #[error("end tag </{element}> is not closed")]
    UnclosedEndTag {
        /// The element.
        element: String,
    },
    /// An end tag with no element open.
    #[error("end tag </{element}> without a start tag")]
    UnmatchedEndTag {
        /// The element.
        element: String,
    },
    /// An end tag that closes another element than the one open.
    #[error("end tag </{element}> does not match <{open}> (line {line})")]
    MismatchedEndTag {
        /// The end tag's element.
        element: String,
        /// The element open.
        open: String,
        /// 1-based line of the open element's start tag.
        line: usize,
    },
}

/// What is wrong with an element path ([`EditError::BadPath`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path is empty.
    #[error("empty path")]
    Empty,
    /// Two `/` in a row, or a path starting or ending with `/`.
    #[error("empty step")]
    EmptyStep,
    /// A step is not an XML name (nor `*`).
    #[error("{0:?} is not an element name")]
    NotAnElementName(String),
    /// A predicate does not start with `@`.
    #[error("a predicate must be [@attr] or [@attr='value']")]
    BadPredicate,
    /// A predicate's attribute is not an XML name.
    #[error("{0:?} is not an attribute name")]
    NotAnAttributeName(String),
    /// A predicate value without quotes.
    #[error("a predicate value must be quoted")]
    UnquotedPredicateValue,
    /// A predicate value without its closing quote.
    #[error("unterminated predicate value")]
    UnterminatedPredicateValue,
    /// A predicate without its `]`.
    #[error("missing ']'")]
    MissingBracket,
    /// A character where `/`, `[` or the end belongs.
    #[error("unexpected {0:?}")]
    Unexpected(char),
    /// `ensure_text`: the path has no parent, or its last step is `*`.
    #[error("ensure_text needs a parent path and a named last step")]
    NoParentOrName,
    /// `ensure_text`: a predicate of the last step has no value to create the element with.
    #[error("predicates of the element to create need values")]
    PredicateWithoutValue,
}

/// An edit that cannot be made. Paths are the caller's; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// The path is not of the accepted form.
    #[error("invalid element path {path}: {problem}")]
    BadPath {
        /// The element path.
        path: String,
        /// What is wrong.
        problem: PathProblem,
    },
    /// No element matches the path.
    #[error("element {path} not found")]
    NotFound {
        /// The element path.
        path: String,
    },
    /// `ensure_text`: the parent of the element to create is missing.
    #[error("element {parent} not found (needed for {path})")]
    ParentNotFound {
        /// The element path.
        path: String,
        /// The missing parent's path.
        parent: String,
    },
    /// Setting the text of an element that has child elements would delete them.
    #[error("element {path} (line {line}) has child elements; its text cannot be set")]
    HasChildren {
        /// The element path.
        path: String,
        /// 1-based line in the document.
        line: usize,
    },
    /// The element's text is split by comments or processing instructions.
    #[error(
        "element {path} (line {line}) has text in several places between comments; set it by hand"
    )]
    MixedContent {
        /// The element path.
        path: String,
        /// 1-based line in the document.
        line: usize,
    },
    /// The attribute name is not an XML name.
    #[error("invalid attribute name {attr:?} for element {path}")]
    BadAttrName {
        /// The element path.
        path: String,
        /// The attribute name.
        attr: String,
    },
    /// The value holds a character that XML 1.0 cannot represent at all.
    #[error("value for {path} contains U+{code:04X}, which XML cannot hold")]
    InvalidValue {
        /// The element path.
        path: String,
        /// The character's code point.
        code: u32,
    },
    /// Two edits in the same set touch the same bytes (for instance setting the text of an
    /// element and creating a child in it).
    #[error("conflicting edits at {path}")]
    Conflict {
        /// The element path.
        path: String,
    },
    /// The edited text no longer parses: a bug in this module, reported rather than written.
    #[error("edited text is not well-formed XML ({0}); nothing written")]
    Internal(XmlError),
}

/// One value changed by [`Edits::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The path as the caller gave it; `path/@attr` for an attribute.
    pub path: String,
    /// 1-based line, in the original text, of the element (of its parent for a created
    /// element): tells several matches of one path apart.
    pub line: usize,
    /// The decoded old value; `None` when the element or attribute was created.
    pub old: Option<String>,
    /// The new value (as given, not escaped).
    pub new: String,
}

#[derive(Debug, Clone)]
struct Attr {
    qname: String,
    local: String,
    /// Raw value, between the quotes.
    value: Range<usize>,
    quote: u8,
}

impl Attr {
    fn is_xmlns(&self) -> bool {
        self.qname == "xmlns" || self.qname.starts_with("xmlns:")
    }
}

#[derive(Debug, Clone)]
struct Element {
    qname: String,
    local: String,
    children: Vec<usize>,
    /// `<` to `>` inclusive.
    start_tag: Range<usize>,
    attrs: Vec<Attr>,
    /// Right after the name or the last attribute's closing quote: where a new attribute goes.
    attrs_end: usize,
    /// Between the start and end tags; `None` for a self-closing element.
    content: Option<Range<usize>>,
    /// Whitespace between the start of its line and `<`, when only whitespace is there.
    indent: Option<Range<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegKind {
    Text,
    CData,
}

#[derive(Debug, Clone)]
struct Segment {
    /// Raw text, or the inside of a CDATA section.
    range: Range<usize>,
    /// The whole segment (with `<![CDATA[` and `]]>` for CDATA).
    outer: Range<usize>,
    kind: SegKind,
}

/// What [`XmlDoc::text_slot`] found to replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    /// `range` is from the end of the attributes to the end of `/>`.
    SelfClosing,
    /// `range` holds escaped text.
    Text,
    /// `range` is a CDATA section's inside; `outer` the whole section.
    CData,
}

#[derive(Debug, Clone)]
struct TextSlot {
    range: Range<usize>,
    outer: Range<usize>,
    /// Decoded.
    old: String,
    kind: SlotKind,
}

#[derive(Debug, Clone)]
struct Comment {
    /// `<!--` to `-->` inclusive.
    range: Range<usize>,
    /// Inside the delimiters.
    inner: Range<usize>,
    parent: Option<usize>,
    indent: Option<Range<usize>>,
}

/// A parsed XML document: the original text and an index of its elements.
#[derive(Debug, Clone)]
pub struct XmlDoc {
    text: String,
    /// In document order; the root is element 0.
    elements: Vec<Element>,
    /// Text and CDATA in document order.
    segments: Vec<Segment>,
    comments: Vec<Comment>,
    /// Processing instructions inside the root element.
    pis: Vec<Range<usize>>,
    encoding: Option<String>,
    eol: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Paths

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pred {
    attr: String,
    value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// As written (may carry a prefix).
    name: String,
    local: String,
    preds: Vec<Pred>,
}

fn local_part(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn parse_path(path: &str) -> Result<Vec<Step>, PathProblem> {
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    loop {
        let start = i;
        while i < chars.len() && !matches!(chars[i], '/' | '[') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err(PathProblem::EmptyStep);
        }
        if name != "*" && !is_xml_name(&name) {
            return Err(PathProblem::NotAnElementName(name));
        }
        let mut preds = Vec::new();
        while i < chars.len() && chars[i] == '[' {
            i += 1;
            if chars.get(i) != Some(&'@') {
                return Err(PathProblem::BadPredicate);
            }
            i += 1;
            let astart = i;
            while i < chars.len() && !matches!(chars[i], '=' | ']') {
                i += 1;
            }
            let attr: String = chars[astart..i]
                .iter()
                .collect::<String>()
                .trim()
                .to_string();
            if !is_xml_name(&attr) {
                return Err(PathProblem::NotAnAttributeName(attr));
            }
            let mut value = None;
            if chars.get(i) == Some(&'=') {
                i += 1;
                let quote = match chars.get(i) {
                    Some(&q) if q == '\'' || q == '"' => q,
                    _ => return Err(PathProblem::UnquotedPredicateValue),
                };
                i += 1;
                let vstart = i;
                while i < chars.len() && chars[i] != quote {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(PathProblem::UnterminatedPredicateValue);
                }
                value = Some(chars[vstart..i].iter().collect());
                i += 1;
            }
            if chars.get(i) != Some(&']') {
                return Err(PathProblem::MissingBracket);
            }
            i += 1;
            preds.push(Pred { attr, value });
        }
        let local = local_part(&name).to_string();
        steps.push(Step { name, local, preds });
        match chars.get(i) {
            None => return Ok(steps),
            Some('/') => i += 1,
            Some(&c) => return Err(PathProblem::Unexpected(c)),
        }
    }
}

/// Writes steps back as a path, for messages.
fn path_string(steps: &[Step]) -> String {
    let mut out = String::new();
    for (n, s) in steps.iter().enumerate() {
        if n > 0 {
            out.push('/');
        }
        out.push_str(&s.name);
        for p in &s.preds {
            match &p.value {
                Some(v) if v.contains('\'') => out.push_str(&format!("[@{}=\"{}\"]", p.attr, v)),
                Some(v) => out.push_str(&format!("[@{}='{}']", p.attr, v)),
                None => out.push_str(&format!("[@{}]", p.attr)),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Characters, names, escaping

fn is_name_char(c: char) -> bool {
    !(c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | '/' | '=' | '"' | '\'' | '&' | '?' | '!' | '[' | ']' | ';' | '(' | ')'
        )
        || c.is_control())
}

fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_char(c) && !c.is_ascii_digit() && c != '-' && c != '.' => {}
        _ => return false,
    }
    chars.all(is_name_char)
}

/// A character XML 1.0 can hold (literally or as a reference).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || ('\u{20}'..='\u{D7FF}').contains(&c)
        || ('\u{E000}'..='\u{FFFD}').contains(&c)
        || c >= '\u{10000}'
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Unicode,
    Latin1,
    Ascii,
}

impl Charset {
    fn of(encoding: Option<&str>) -> Charset {
        let Some(enc) = encoding else {
            return Charset::Unicode;
        };
        let e = enc.trim().to_ascii_lowercase().replace('_', "-");
        match e.as_str() {
            "utf-8" | "utf8" | "utf-16" | "utf-16le" | "utf-16be" | "utf-32" => Charset::Unicode,
            "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1" | "iso-ir-100" | "cp819"
            | "ibm819" => Charset::Latin1,
            // US-ASCII, and any encoding not known here: ASCII is a subset of all of them, so
            // writing everything else as a reference is always right.
            _ => Charset::Ascii,
        }
    }

    fn holds(self, c: char) -> bool {
        match self {
            Charset::Unicode => true,
            Charset::Latin1 => (c as u32) <= 0xFF,
            Charset::Ascii => c.is_ascii(),
        }
    }
}

/// Where an escaped value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Text,
    /// Attribute value in the given quote.
    Attr(u8),
    /// Both quotes escaped ([`escape_for`], used by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Any,
}

fn escape(value: &str, charset: Charset, ctx: Ctx) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if matches!(ctx, Ctx::Attr(b'"') | Ctx::Any) => out.push_str("&quot;"),
            '\'' if ctx == Ctx::Attr(b'\'') => out.push_str("&apos;"),
            // A parser would normalise these away; references keep them.
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' if matches!(ctx, Ctx::Attr(_) | Ctx::Any) => {
                out.push_str(&format!("&#{};", c as u32))
            }
            c if !charset.holds(c) => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `& < > "` and writes every character that `encoding` (as declared in the XML
/// declaration; `None` means UTF-8) cannot hold as a `&#N;` reference. Unknown encodings are
/// treated as US-ASCII, which is always safe.
#[cfg(test)]
pub(crate) fn escape_for(encoding: Option<&str>, value: &str) -> String {
    escape(value, Charset::of(encoding), Ctx::Any)
}

fn check_value(path: &str, value: &str) -> Result<(), EditError> {
    match value.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(EditError::InvalidValue {
            path: path.to_string(),
            code: c as u32,
        }),
        None => Ok(()),
    }
}

/// Decodes the five predefined entities and character references; other (DTD-declared)
/// entity references are kept as written. `attr` applies attribute-value normalisation.
fn decode(raw: &str, attr: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\r', '\n', '\t']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i..];
        if c != b'&' {
            let ws_len = if rest.starts_with("\r\n") { 2 } else { 1 };
            let normalised = if attr {
                ' '
            } else if c == b'\t' {
                '\t'
            } else {
                '\n'
            };
            out.push(normalised);
            rest = &rest[ws_len..];
            continue;
        }
        let Some(end) = rest.find(';') else {
            out.push_str(rest);
            return out;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => char_ref(name),
        };
        match decoded {
            Some(ch) => out.push(ch),
            None => out.push_str(&rest[..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `#N` or `#xH` to its character.
fn char_ref(name: &str) -> Option<char> {
    let num = name.strip_prefix('#')?;
    let (digits, radix) = match num.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (num, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let code = u32::from_str_radix(digits, radix).ok()?;
    char::from_u32(code).filter(|&c| is_xml_char(c))
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

struct Parser<'t> {
    text: &'t str,
    b: &'t [u8],
    elements: Vec<Element>,
    segments: Vec<Segment>,
    comments: Vec<Comment>,
    pis: Vec<Range<usize>>,
    encoding: Option<String>,
    stack: Vec<usize>,
    root_done: bool,
}

/// What follows a start tag's name: its attributes, where the last one ends, where the tag
/// ends, and whether it closed itself (`/>`).
struct TagTail {
    attrs: Vec<Attr>,
    attrs_end: usize,
    end: usize,
    self_closing: bool,
}

fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn find_from(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    if from > b.len() {
        return None;
    }
    b[from..]
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|i| i + from)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Length of `s`'s leading XML whitespace, and what is left after trimming both ends.
fn ws_trim(s: &str) -> (usize, &str) {
    let is = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let rest = s.trim_start_matches(is);
    (s.len() - rest.len(), rest.trim_end_matches(is))
}

impl<'t> Parser<'t> {
    fn err<T>(&self, pos: usize, problem: Malformed) -> Result<T, XmlError> {
        Err(XmlError::Parse {
            line: line_of(self.text, pos),
            problem,
        })
    }

    fn starts(&self, pos: usize, s: &str) -> bool {
        self.b[pos..].starts_with(s.as_bytes())
    }

    /// Indentation of markup starting at `pos`: the run of spaces and tabs back to a line start.
    fn indent_at(&self, pos: usize) -> Option<Range<usize>> {
        let mut i = pos;
        while i > 0 && matches!(self.b[i - 1], b' ' | b'\t') {
            i -= 1;
        }
        if i == 0 || self.b[i - 1] == b'\n' || self.b[i - 1] == b'\r' {
            Some(i..pos)
        } else {
            None
        }
    }

    fn skip_ws(&self, mut pos: usize) -> usize {
        while pos < self.b.len() && is_ws(self.b[pos]) {
            pos += 1;
        }
        pos
    }

    fn read_name(&self, pos: usize) -> Result<(String, usize), XmlError> {
        let rest = &self.text[pos..];
        let len = rest
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(rest.len(), |(i, _)| i);
        let name = &rest[..len];
        if !is_xml_name(name) {
            return self.err(pos, Malformed::ExpectedName);
        }
        Ok((name.to_string(), pos + len))
    }

    /// Checks that every `&` in `range` starts a well-formed reference.
    fn check_refs(&self, range: Range<usize>) -> Result<(), XmlError> {
        let mut i = range.start;
        while let Some(p) = self.b[i..range.end].iter().position(|&c| c == b'&') {
            let at = i + p;
            let semi = self.b[at..range.end].iter().position(|&c| c == b';');
            let ok = match semi {
                Some(s) => {
                    let name = &self.text[at + 1..at + s];
                    if name.starts_with('#') {
                        char_ref(name).is_some()
                    } else {
                        is_xml_name(name)
                    }
                }
                None => false,
            };
            if !ok {
                return self.err(at, Malformed::BadReference);
            }
            i = at + 1;
        }
        Ok(())
    }

    fn parse(mut self) -> Result<XmlDoc, XmlError> {
        let len = self.b.len();
        let doc_start = if self.text.starts_with('\u{feff}') {
            3
        } else {
            0
        };
        let mut pos = doc_start;
        let mut seen_doctype = false;
        while pos < len {
            pos = if self.b[pos] != b'<' {
                self.text_run(pos)?
            } else if self.starts(pos, "<!--") {
                self.comment(pos)?
            } else if self.starts(pos, "<![CDATA[") {
                self.cdata(pos)?
            } else if self.starts(pos, "<!DOCTYPE") {
                if seen_doctype || !self.elements.is_empty() {
                    return self.err(pos, Malformed::MisplacedDoctype);
                }
                seen_doctype = true;
                self.doctype(pos)?
            } else if self.starts(pos, "<?") {
                self.processing_instruction(pos, doc_start)?
            } else if self.starts(pos, "</") {
                self.end_tag(pos)?
            } else if self.starts(pos, "<!") {
                return self.err(pos, Malformed::UnexpectedDeclaration);
            } else {
                self.start_tag(pos)?
            };
        }
        self.finish()
    }

    /// Checks that the whole text was one closed root element and returns the document.
    fn finish(self) -> Result<XmlDoc, XmlError> {
        let len = self.b.len();
        if let Some(&open) = self.stack.last() {
            let el = &self.elements[open];
            return self.err(
                len,
                Malformed::UnclosedElement {
                    element: el.qname.clone(),
                    line: line_of(self.text, el.start_tag.start),
                },
            );
        }
        if self.elements.is_empty() {
            return self.err(len, Malformed::NoRoot);
        }
        let eol = match self.text.find('\n') {
            Some(i) if i > 0 && self.b[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        };
        Ok(XmlDoc {
            text: self.text.to_string(),
            elements: self.elements,
            segments: self.segments,
            comments: self.comments,
            pis: self.pis,
            encoding: self.encoding,
            eol,
        })
    }

    /// Records the comment opening at `pos`; returns the position after it.
    fn comment(&mut self, pos: usize) -> Result<usize, XmlError> {
        let Some(end) = find_from(self.b, pos + 4, b"-->") else {
            return self.err(pos, Malformed::UnclosedComment);
        };
        self.comments.push(Comment {
            range: pos..end + 3,
            inner: pos + 4..end,
            parent: self.stack.last().copied(),
            indent: self.indent_at(pos),
        });
        Ok(end + 3)
    }

    /// Records the CDATA section opening at `pos`; returns the position after it.
    fn cdata(&mut self, pos: usize) -> Result<usize, XmlError> {
        if self.stack.is_empty() {
            return self.err(pos, Malformed::CdataOutsideRoot);
        }
        let Some(end) = find_from(self.b, pos + 9, b"]]>") else {
            return self.err(pos, Malformed::UnclosedCdata);
        };
        self.segments.push(Segment {
            range: pos + 9..end,
            outer: pos..end + 3,
            kind: SegKind::CData,
        });
        Ok(end + 3)
    }

    /// Reads the processing instruction (or XML declaration, only allowed at `doc_start`)
    /// opening at `pos`; returns the position after it.
    fn processing_instruction(&mut self, pos: usize, doc_start: usize) -> Result<usize, XmlError> {
        let Some(end) = find_from(self.b, pos + 2, b"?>") else {
            return self.err(pos, Malformed::UnclosedProcessingInstruction);
        };
        let (target, _) = self.read_name(pos + 2)?;
        if target.eq_ignore_ascii_case("xml") {
            if pos != doc_start || target != "xml" {
                return self.err(pos, Malformed::LateXmlDeclaration);
            }
            self.encoding = self.declared(pos + 5..end);
        } else if !self.stack.is_empty() {
            self.pis.push(pos..end + 2);
        }
        Ok(end + 2)
    }

    fn text_run(&mut self, pos: usize) -> Result<usize, XmlError> {
        let end = self.b[pos..]
            .iter()
            .position(|&c| c == b'<')
            .map_or(self.b.len(), |i| i + pos);
        if self.stack.is_empty() {
            if let Some(i) = self.b[pos..end].iter().position(|&c| !is_ws(c)) {
                return self.err(pos + i, Malformed::TextOutsideRoot);
            }
        } else {
            self.check_refs(pos..end)?;
            if let Some(i) = find_from(&self.b[..end], pos, b"]]>") {
                return self.err(i, Malformed::CdataEndInText);
            }
            self.segments.push(Segment {
                range: pos..end,
                outer: pos..end,
                kind: SegKind::Text,
            });
        }
        Ok(end)
    }

    /// The `encoding` pseudo-attribute of the XML declaration.
    fn declared(&self, range: Range<usize>) -> Option<String> {
        let decl = &self.text[range];
        let at = decl.find("encoding")?;
        let rest = decl[at + "encoding".len()..]
            .trim_start()
            .strip_prefix('=')?;
        let rest = rest.trim_start();
        let quote = rest.chars().next().filter(|&q| q == '"' || q == '\'')?;
        let inner = &rest[1..];
        let end = inner.find(quote)?;
        Some(inner[..end].to_string())
    }

    fn doctype(&self, start: usize) -> Result<usize, XmlError> {
        let mut i = start + "<!DOCTYPE".len();
        let mut depth = 0usize;
        while i < self.b.len() {
            match self.b[i] {
                q @ (b'"' | b'\'') => {
                    let Some(p) = self.b[i + 1..].iter().position(|&c| c == q) else {
                        return self.err(i, Malformed::UnterminatedDoctypeString);
                    };
                    i += p + 2;
                    continue;
                }
                b'<' if self.starts(i, "<!--") => {
                    let Some(end) = find_from(self.b, i + 4, b"-->") else {
                        return self.err(i, Malformed::UnclosedComment);
                    };
                    i = end + 3;
                    continue;
                }
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'>' if depth == 0 => return Ok(i + 1),
                _ => {}
            }
            i += 1;
        }
        self.err(start, Malformed::UnclosedDoctype)
    }

    /// Reads the start tag opening at `start` and opens its element; returns the position
    /// after the tag.
    fn start_tag(&mut self, start: usize) -> Result<usize, XmlError> {
        let (qname, pos) = self.read_name(start + 1)?;
        let tail = self.attributes(start, &qname, pos)?;
        self.open_element(start, qname, tail)
    }

    /// Reads the attributes of start tag `<qname` (opened at `start`) from `pos` up to and
    /// including its `>` or `/>`.
    fn attributes(&self, start: usize, qname: &str, mut pos: usize) -> Result<TagTail, XmlError> {
        let mut attrs: Vec<Attr> = Vec::new();
        let mut attrs_end = pos;
        loop {
            let after_ws = self.skip_ws(pos);
            if after_ws >= self.b.len() {
                return self.err(
                    start,
                    Malformed::UnclosedStartTag {
                        element: qname.to_string(),
                    },
                );
            }
            let close = if self.b[after_ws] == b'>' {
                Some((1, false))
            } else if self.starts(after_ws, "/>") {
                Some((2, true))
            } else {
                None
            };
            if let Some((len, self_closing)) = close {
                return Ok(TagTail {
                    attrs,
                    attrs_end,
                    end: after_ws + len,
                    self_closing,
                });
            }
            if after_ws == pos {
                return self.err(
                    pos,
                    Malformed::ExpectedTagEnd {
                        element: qname.to_string(),
                    },
                );
            }
            let attr = self.attribute(after_ws, qname)?;
            if attrs.iter().any(|a| a.qname == attr.qname) {
                let aname = &attr.qname;
                return self.err(
                    after_ws,
                    Malformed::DuplicateAttribute {
                        attr: aname.to_string(),
                        element: qname.to_string(),
                    },
                );
            }
            pos = attr.value.end + 1;
            attrs_end = pos;
            attrs.push(attr);
        }
    }

    /// Reads one `name="value"` attribute of `<qname>` starting at `at`.
    fn attribute(&self, at: usize, qname: &str) -> Result<Attr, XmlError> {
        let (aname, p) = self.read_name(at)?;
        let p = self.skip_ws(p);
        if self.b.get(p) != Some(&b'=') {
            return self.err(
                p,
                Malformed::AttributeWithoutValue {
                    attr: aname.to_string(),
                    element: qname.to_string(),
                },
            );
        }
        let p = self.skip_ws(p + 1);
        let quote = match self.b.get(p) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                return self.err(
                    p,
                    Malformed::UnquotedAttribute {
                        attr: aname.to_string(),
                    },
                )
            }
        };
        let Some(vlen) = self.b[p + 1..].iter().position(|&c| c == quote) else {
            return self.err(
                p,
                Malformed::UnclosedAttribute {
                    attr: aname.to_string(),
                },
            );
        };
        let value = p + 1..p + 1 + vlen;
        if let Some(i) = self.b[value.clone()].iter().position(|&c| c == b'<') {
            return self.err(
                value.start + i,
                Malformed::LtInAttribute {
                    attr: aname.to_string(),
                },
            );
        }
        self.check_refs(value.clone())?;
        Ok(Attr {
            local: local_part(&aname).to_string(),
            qname: aname,
            value,
            quote,
        })
    }

    /// Adds the element whose start tag opens at `start` under the open element (or as the
    /// root), and keeps it open unless the tag closed itself; returns the position after it.
    fn open_element(
        &mut self,
        start: usize,
        qname: String,
        tail: TagTail,
    ) -> Result<usize, XmlError> {
        let parent = self.stack.last().copied();
        if parent.is_none() && (self.root_done || !self.elements.is_empty()) {
            return self.err(
                start,
                Malformed::SecondRoot {
                    element: qname.to_string(),
                },
            );
        }
        let pos = tail.end;
        let idx = self.elements.len();
        self.elements.push(Element {
            local: local_part(&qname).to_string(),
            qname,
            children: Vec::new(),
            start_tag: start..pos,
            attrs: tail.attrs,
            attrs_end: tail.attrs_end,
            content: if tail.self_closing {
                None
            } else {
                Some(pos..pos)
            },
            indent: self.indent_at(start),
        });
        if let Some(p) = parent {
            self.elements[p].children.push(idx);
        }
        if tail.self_closing {
            if parent.is_none() {
                self.root_done = true;
            }
        } else {
            self.stack.push(idx);
        }
        Ok(pos)
    }

    fn end_tag(&mut self, start: usize) -> Result<usize, XmlError> {
        let (name, p) = self.read_name(start + 2)?;
        let p = self.skip_ws(p);
        if self.b.get(p) != Some(&b'>') {
            return self.err(
                p,
                Malformed::UnclosedEndTag {
                    element: name.to_string(),
                },
            );
        }
        let Some(open) = self.stack.pop() else {
            return self.err(
                start,
                Malformed::UnmatchedEndTag {
                    element: name.to_string(),
                },
            );
        };
        let el = &mut self.elements[open];
        if el.qname != name {
            let (q, l) = (el.qname.clone(), line_of(self.text, el.start_tag.start));
            return self.err(
                start,
                Malformed::MismatchedEndTag {
                    element: name.to_string(),
                    open: q,
                    line: l,
                },
            );
        }
        let cstart = el.start_tag.end;
        el.content = Some(cstart..start);
        if self.stack.is_empty() {
            self.root_done = true;
        }
        Ok(p + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

impl XmlDoc {
    /// Parses `text` (already decoded from the file's encoding).
    pub fn parse(text: &str) -> Result<XmlDoc, XmlError> {
        Parser {
            text,
            b: text.as_bytes(),
            elements: Vec::new(),
            segments: Vec::new(),
            comments: Vec::new(),
            pis: Vec::new(),
            encoding: None,
            stack: Vec::new(),
            root_done: false,
        }
        .parse()
    }

    /// The original text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The encoding named in the XML declaration, as written (`None` when there is none).
    pub fn declared_encoding(&self) -> Option<String> {
        self.encoding.clone()
    }

    /// The file's line ending (`"\r\n"` or `"\n"`), from its first line.
    pub fn line_ending(&self) -> &'static str {
        self.eol
    }

    /// Text content (entity-decoded) of every element matching `path`: its character data and
    /// CDATA, including that of descendants, without comments. An invalid path matches nothing.
    pub fn texts(&self, path: &str) -> Vec<String> {
        self.select_str(path)
            .into_iter()
            .map(|i| self.text_of(i))
            .collect()
    }

    /// Value (decoded) of attribute `attr` (matched by local name) on every element matching
    /// `path` that has it.
    pub fn attrs(&self, path: &str, attr: &str) -> Vec<String> {
        self.select_str(path)
            .into_iter()
            .filter_map(|i| self.find_attr(i, attr))
            .map(|a| decode(&self.text[a.value.clone()], true))
            .collect()
    }

    /// How many elements match `path`.
    pub fn count(&self, path: &str) -> usize {
        self.select_str(path).len()
    }

    /// 1-based lines of the elements matching `path`.
    pub fn lines(&self, path: &str) -> Vec<usize> {
        self.select_str(path)
            .into_iter()
            .map(|i| self.line_of_element(i))
            .collect()
    }

    /// The paths (local names from the root, no predicates) of every element whose local name
    /// is `local`, each once, in document order: for files whose nesting varies by version.
    pub fn paths_named(&self, local: &str) -> Vec<String> {
        let mut parent = vec![None; self.elements.len()];
        for (i, e) in self.elements.iter().enumerate() {
            for &c in &e.children {
                parent[c] = Some(i);
            }
        }
        let mut out: Vec<String> = Vec::new();
        for (i, e) in self
            .elements
            .iter()
            .enumerate()
            .filter(|(_, e)| e.local == local)
        {
            let mut names = vec![e.local.as_str()];
            let mut cur = parent[i];
            while let Some(p) = cur {
                names.push(self.elements[p].local.as_str());
                cur = parent[p];
            }
            names.reverse();
            let path = names.join("/");
            if !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }

    /// True when an element matching `path` carries a secure-vault marker (an attribute whose
    /// local name is `secretAlias`): its text is then a placeholder, not the real value.
    pub fn is_secured(&self, path: &str) -> bool {
        self.select_str(path).into_iter().any(|i| {
            self.elements[i]
                .attrs
                .iter()
                .any(|a| a.local == "secretAlias")
        })
    }

    fn line_of_element(&self, idx: usize) -> usize {
        line_of(&self.text, self.elements[idx].start_tag.start)
    }

    fn select_str(&self, path: &str) -> Vec<usize> {
        parse_path(path).map_or_else(|_| Vec::new(), |steps| self.select(&steps))
    }

    fn matches(&self, idx: usize, step: &Step) -> bool {
        let el = &self.elements[idx];
        (step.local == "*" || el.local == step.local)
            && step.preds.iter().all(|p| {
                el.attrs
                    .iter()
                    .filter(|a| !a.is_xmlns() && a.local == local_part(&p.attr))
                    .any(|a| match &p.value {
                        None => true,
                        Some(v) => decode(&self.text[a.value.clone()], true) == *v,
                    })
            })
    }

    /// Matching elements, in document order.
    fn select(&self, steps: &[Step]) -> Vec<usize> {
        let Some(first) = steps.first() else {
            return Vec::new();
        };
        if self.elements.is_empty() || !self.matches(0, first) {
            return Vec::new();
        }
        let mut current = vec![0];
        for step in &steps[1..] {
            current = current
                .iter()
                .flat_map(|&p| self.elements[p].children.iter().copied())
                .filter(|&c| self.matches(c, step))
                .collect();
        }
        current
    }

    fn find_attr(&self, idx: usize, attr: &str) -> Option<&Attr> {
        let attrs = &self.elements[idx].attrs;
        attrs.iter().find(|a| a.qname == attr).or_else(|| {
            let local = local_part(attr);
            attrs.iter().find(|a| !a.is_xmlns() && a.local == local)
        })
    }

    fn text_of(&self, idx: usize) -> String {
        let Some(content) = self.elements[idx].content.clone() else {
            return String::new();
        };
        let first = self
            .segments
            .partition_point(|s| s.outer.start < content.start);
        let mut out = String::new();
        for seg in self.segments[first..]
            .iter()
            .take_while(|s| s.outer.end <= content.end)
        {
            match seg.kind {
                SegKind::Text => out.push_str(&decode(&self.text[seg.range.clone()], false)),
                SegKind::CData => out.push_str(&self.text[seg.range.clone()]),
            }
        }
        out
    }

    /// Where `set_text` writes into leaf element `idx`, and the old value it compares with.
    /// `None` when the text is split among comments or processing instructions.
    ///
    /// Usually the whole content is replaced. The content's comments and processing
    /// instructions, and line-broken whitespace around a value (`<A>\n  value\n</A>`), are kept:
    /// then only the one piece of text (or CDATA section) is replaced, or, with none, the value
    /// goes after the last comment.
    fn text_slot(&self, idx: usize, value: &str) -> Option<TextSlot> {
        let el = &self.elements[idx];
        let Some(content) = el.content.clone() else {
            let range = el.attrs_end..el.start_tag.end;
            return Some(TextSlot {
                outer: range.clone(),
                range,
                old: String::new(),
                kind: SlotKind::SelfClosing,
            });
        };
        let within = |r: &Range<usize>| r.start >= content.start && r.end <= content.end;
        let markup = self.comments.iter().any(|c| within(&c.range)) || self.pis.iter().any(within);
        let raw = &self.text[content.clone()];
        let (lead, body) = ws_trim(raw);
        let line_broken = raw[..lead].contains('\n') || raw[lead + body.len()..].contains('\n');
        let first = self
            .segments
            .partition_point(|s| s.outer.start < content.start);
        let solid: Vec<&Segment> = self.segments[first..]
            .iter()
            .take_while(|s| s.outer.end <= content.end)
            .filter(|s| {
                s.kind == SegKind::CData || !ws_trim(&self.text[s.range.clone()]).1.is_empty()
            })
            .collect();
        let whole = TextSlot {
            range: content.clone(),
            outer: content.clone(),
            old: self.text_of(idx),
            kind: SlotKind::Text,
        };
        match solid.as_slice() {
            [] if markup => {
                let at = content.start + lead + body.len();
                Some(TextSlot {
                    range: at..at,
                    outer: at..at,
                    old: String::new(),
                    kind: SlotKind::Text,
                })
            }
            [one] if one.kind == SegKind::CData => Some(TextSlot {
                range: one.range.clone(),
                outer: one.outer.clone(),
                old: self.text[one.range.clone()].to_string(),
                kind: SlotKind::CData,
            }),
            [one] if markup || line_broken => {
                let seg = &self.text[one.range.clone()];
                let range = if ws_trim(value).1.len() == value.len() {
                    let (l, b) = ws_trim(seg);
                    one.range.start + l..one.range.start + l + b.len()
                } else {
                    one.range.clone()
                };
                Some(TextSlot {
                    old: decode(&self.text[range.clone()], false),
                    outer: range.clone(),
                    range,
                    kind: SlotKind::Text,
                })
            }
            _ if markup => None,
            _ => Some(whole),
        }
    }

    fn indent_str(&self, r: &Option<Range<usize>>) -> Option<&str> {
        r.clone().map(|r| &self.text[r])
    }

    /// Indentation for a new child of `parent`: that of its child elements, else of its
    /// comments, else the parent's own plus four spaces (or a tab in a tab-indented file).
    fn child_indent(&self, parent: usize) -> String {
        let el = &self.elements[parent];
        if let Some(ind) = el
            .children
            .iter()
            .find_map(|&c| self.indent_str(&self.elements[c].indent))
        {
            return ind.to_string();
        }
        if let Some(ind) = self
            .comments
            .iter()
            .filter(|c| c.parent == Some(parent))
            .find_map(|c| self.indent_str(&c.indent))
        {
            return ind.to_string();
        }
        let own = self.indent_str(&el.indent).unwrap_or("");
        if !own.is_empty() && own.bytes().all(|b| b == b'\t') {
            format!("{own}\t")
        } else {
            format!("{own}    ")
        }
    }

    /// The last comment directly inside `parent` that holds a commented-out `step` element
    /// (`<!--<Name>…</Name>-->` or WSO2's `<!--Name>…</Name-->`).
    fn commented_twin(&self, parent: usize, step: &Step) -> Option<&Comment> {
        self.comments
            .iter()
            .filter(|c| c.parent == Some(parent))
            .rfind(|c| {
                let inner = &self.text[c.inner.clone()];
                let name = step.local.as_str();
                let opens = |s: &str| {
                    s.strip_prefix(name)
                        .is_some_and(|r| r.starts_with(['>', ' ', '/', '\t', '\r', '\n']))
                };
                let names_it = opens(inner.trim_start())
                    || inner
                        .match_indices('<')
                        .any(|(i, _)| opens(&inner[i + 1..]));
                names_it
                    && step.preds.iter().all(|p| match &p.value {
                        None => inner.contains(&format!("{}=", p.attr)),
                        Some(v) => {
                            inner.contains(&format!("{}=\"{}\"", p.attr, v))
                                || inner.contains(&format!("{}='{}'", p.attr, v))
                        }
                    })
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Edits

#[derive(Debug, Clone)]
struct TextOp {
    elem: usize,
    path: String,
    value: String,
}

#[derive(Debug, Clone)]
struct AttrOp {
    elem: usize,
    attr: String,
    path: String,
    value: String,
}

#[derive(Debug, Clone)]
struct InsertOp {
    parent: usize,
    step: Step,
    path: String,
    value: String,
}

#[derive(Debug)]
struct Splice {
    range: Range<usize>,
    text: String,
    path: String,
}

/// A set of edits applied together to the original text. Every call checks its path against the
/// original document at once (so a failed call records nothing); [`Edits::apply`] then writes all
/// of them or none. A later edit of the same value replaces an earlier one. Paths refer to the
/// original document: an element created by `ensure_text` cannot be addressed by another edit
/// of the same set.
#[derive(Debug, Clone)]
pub struct Edits<'a> {
    doc: &'a XmlDoc,
    texts: Vec<TextOp>,
    attrs: Vec<AttrOp>,
    inserts: Vec<InsertOp>,
}

impl<'a> Edits<'a> {
    /// An empty set of edits on `doc`.
    pub fn new(doc: &'a XmlDoc) -> Self {
        Edits {
            doc,
            texts: Vec::new(),
            attrs: Vec::new(),
            inserts: Vec::new(),
        }
    }

    fn steps(path: &str) -> Result<Vec<Step>, EditError> {
        parse_path(path).map_err(|problem| EditError::BadPath {
            path: path.to_string(),
            problem,
        })
    }

    fn check_leaf(&self, path: &str, elem: usize, value: &str) -> Result<(), EditError> {
        let line = self.doc.line_of_element(elem);
        if !self.doc.elements[elem].children.is_empty() {
            return Err(EditError::HasChildren {
                path: path.to_string(),
                line,
            });
        }
        if self.doc.text_slot(elem, value).is_none() {
            return Err(EditError::MixedContent {
                path: path.to_string(),
                line,
            });
        }
        Ok(())
    }

    fn push_text(&mut self, elem: usize, path: &str, value: &str) {
        self.texts.retain(|t| t.elem != elem);
        self.texts.push(TextOp {
            elem,
            path: path.to_string(),
            value: value.to_string(),
        });
    }

    /// Sets the text content of every element matching `path`. Error if none matches, or if a
    /// match has child elements.
    pub fn set_text(&mut self, path: &str, value: &str) -> Result<(), EditError> {
        let steps = Self::steps(path)?;
        check_value(path, value)?;
        let found = self.doc.select(&steps);
        if found.is_empty() {
            return Err(EditError::NotFound {
                path: path.to_string(),
            });
        }
        for &e in &found {
            self.check_leaf(path, e, value)?;
        }
        for e in found {
            self.push_text(e, path, value);
        }
        Ok(())
    }

    /// Sets attribute `attr` on every element matching `path`: replaces its value in place
    /// (keeping its quote), or adds it after the last attribute, with one space, if absent.
    /// Error if no element matches.
    pub fn set_attr(&mut self, path: &str, attr: &str, value: &str) -> Result<(), EditError> {
        let steps = Self::steps(path)?;
        if !is_xml_name(attr) {
            return Err(EditError::BadAttrName {
                path: path.to_string(),
                attr: attr.to_string(),
            });
        }
        check_value(path, value)?;
        let found = self.doc.select(&steps);
        if found.is_empty() {
            return Err(EditError::NotFound {
                path: path.to_string(),
            });
        }
        for elem in found {
            self.attrs.retain(|a| !(a.elem == elem && a.attr == attr));
            self.attrs.push(AttrOp {
                elem,
                attr: attr.to_string(),
                path: path.to_string(),
                value: value.to_string(),
            });
        }
        Ok(())
    }

    /// Ensures that every parent matching `path` minus its last step has a child matching the
    /// last step, with text `value`. Existing children are set as by [`Edits::set_text`]. A
    /// missing child is created (with the predicates' attributes, e.g. `parameter[@name='x']`):
    /// right after the last comment directly inside the parent that holds a commented-out twin
    /// (`<!--<Name>…` or `<!--Name>…`), else after the parent's last child; indented like the
    /// parent's child elements, with the file's line ending. Error if no parent matches.
    pub fn ensure_text(&mut self, path: &str, value: &str) -> Result<(), EditError> {
        let steps = Self::steps(path)?;
        check_value(path, value)?;
        let Some((last, parent_steps)) = steps.split_last() else {
            return Err(EditError::BadPath {
                path: path.to_string(),
                problem: PathProblem::Empty,
            });
        };
        if parent_steps.is_empty() || last.local == "*" {
            return Err(EditError::BadPath {
                path: path.to_string(),
                problem: PathProblem::NoParentOrName,
            });
        }
        if last.preds.iter().any(|p| p.value.is_none()) {
            return Err(EditError::BadPath {
                path: path.to_string(),
                problem: PathProblem::PredicateWithoutValue,
            });
        }
        let parents = self.doc.select(parent_steps);
        if parents.is_empty() {
            return Err(EditError::ParentNotFound {
                path: path.to_string(),
                parent: path_string(parent_steps),
            });
        }
        let mut plan: Vec<(usize, Vec<usize>)> = Vec::new();
        for p in parents {
            let existing: Vec<usize> = self.doc.elements[p]
                .children
                .iter()
                .copied()
                .filter(|&c| self.doc.matches(c, last))
                .collect();
            for &e in &existing {
                self.check_leaf(path, e, value)?;
            }
            plan.push((p, existing));
        }
        for (parent, existing) in plan {
            if existing.is_empty() {
                self.inserts
                    .retain(|i| !(i.parent == parent && i.step == *last));
                self.inserts.push(InsertOp {
                    parent,
                    step: last.clone(),
                    path: path.to_string(),
                    value: value.to_string(),
                });
            } else {
                for e in existing {
                    self.push_text(e, path, value);
                }
            }
        }
        Ok(())
    }

    /// The new text, and the changes made (path, old value, new value) in document order —
    /// empty, with the original text, if nothing changes (a value set to what it already is is
    /// not a change).
    pub fn apply(self) -> Result<(String, Vec<Change>), EditError> {
        let charset = Charset::of(self.doc.encoding.as_deref());
        let mut splices: Vec<Splice> = Vec::new();
        let mut changes: Vec<(usize, Change)> = Vec::new();
        for op in &self.texts {
            if let Some((splice, change)) = self.text_edit(op, charset)? {
                splices.push(splice);
                changes.push(change);
            }
        }
        for op in &self.attrs {
            if let Some((splice, change)) = self.attr_edit(op, charset) {
                splices.push(splice);
                changes.push(change);
            }
        }
        self.insert_splices(charset, &mut splices, &mut changes);
        let out = splice_text(&self.doc.text, &mut splices)?;
        if !splices.is_empty() {
            XmlDoc::parse(&out).map_err(EditError::Internal)?;
        }
        changes.sort_by_key(|(pos, _)| *pos);
        Ok((out, changes.into_iter().map(|(_, c)| c).collect()))
    }

    /// The splice and change setting an element's text, or `None` if it already holds the
    /// value. Error if the element also gets a new child, or is not a plain text slot.
    fn text_edit(&self, op: &TextOp, charset: Charset) -> Result<Option<Edit>, EditError> {
        let doc = self.doc;
        if self.inserts.iter().any(|i| i.parent == op.elem) {
            return Err(EditError::Conflict {
                path: op.path.clone(),
            });
        }
        let el = &doc.elements[op.elem];
        let Some(slot) = doc.text_slot(op.elem, &op.value) else {
            return Err(EditError::MixedContent {
                path: op.path.clone(),
                line: doc.line_of_element(op.elem),
            });
        };
        if slot.old == op.value {
            return Ok(None);
        }
        let escaped = escape(&op.value, charset, Ctx::Text);
        let fits_cdata =
            !op.value.contains("]]>") && op.value.chars().all(|c| charset.holds(c) && c != '\r');
        let (range, text) = match slot.kind {
            SlotKind::SelfClosing => (slot.range, format!(">{escaped}</{}>", el.qname)),
            SlotKind::CData if fits_cdata => (slot.range, op.value.clone()),
            SlotKind::CData => (slot.outer, escaped),
            SlotKind::Text => (slot.range, escaped),
        };
        let splice = Splice {
            range,
            text,
            path: op.path.clone(),
        };
        let change = Change {
            path: op.path.clone(),
            line: doc.line_of_element(op.elem),
            old: Some(slot.old),
            new: op.value.clone(),
        };
        Ok(Some((splice, (el.start_tag.start, change))))
    }

    /// The splice and change setting (or adding) an attribute, or `None` if it already holds
    /// the value.
    fn attr_edit(&self, op: &AttrOp, charset: Charset) -> Option<Edit> {
        let doc = self.doc;
        let el = &doc.elements[op.elem];
        let shown = format!("{}/@{}", op.path, op.attr);
        let (old, range, text) = match doc.find_attr(op.elem, &op.attr) {
            Some(a) => {
                let old = decode(&doc.text[a.value.clone()], true);
                if old == op.value {
                    return None;
                }
                let text = escape(&op.value, charset, Ctx::Attr(a.quote));
                (Some(old), a.value.clone(), text)
            }
            None => {
                let text = format!(
                    " {}=\"{}\"",
                    op.attr,
                    escape(&op.value, charset, Ctx::Attr(b'"'))
                );
                (None, el.attrs_end..el.attrs_end, text)
            }
        };
        let splice = Splice {
            range,
            text,
            path: shown.clone(),
        };
        let change = Change {
            path: shown,
            line: doc.line_of_element(op.elem),
            old,
            new: op.value.clone(),
        };
        Some((splice, (el.start_tag.start, change)))
    }

    fn insert_splices(
        &self,
        charset: Charset,
        splices: &mut Vec<Splice>,
        changes: &mut Vec<(usize, Change)>,
    ) {
        let doc = self.doc;
        let mut parents: Vec<usize> = self.inserts.iter().map(|i| i.parent).collect();
        parents.sort_unstable();
        parents.dedup();
        for parent in parents {
            let lead = self.insert_lead(parent);
            // Anchor position -> the new elements written there, in call order.
            let mut groups: Vec<(usize, String, &str)> = Vec::new();
            for op in self.inserts.iter().filter(|i| i.parent == parent) {
                let anchor = self.insert_anchor(parent, &op.step);
                let piece = new_element(&lead, &op.step, &op.value, charset);
                match groups.iter_mut().find(|g| g.0 == anchor) {
                    Some(g) => g.1.push_str(&piece),
                    None => groups.push((anchor, piece, &op.path)),
                }
                changes.push((
                    anchor,
                    Change {
                        path: op.path.clone(),
                        line: doc.line_of_element(parent),
                        old: None,
                        new: op.value.clone(),
                    },
                ));
            }
            for (anchor, pieces, path) in groups {
                splices.push(self.insert_splice(parent, anchor, pieces, path));
            }
        }
    }

    /// What goes before each new child of `parent`: a line break and the children's indent,
    /// or nothing for a parent written on one line (`<P><A>1</A></P>`), whose new child goes
    /// on that line.
    fn insert_lead(&self, parent: usize) -> String {
        let doc = self.doc;
        let one_line = doc.elements[parent].content.as_ref().is_some_and(|c| {
            let raw = &doc.text[c.clone()];
            !raw.contains('\n') && !ws_trim(raw).1.is_empty()
        });
        if one_line {
            String::new()
        } else {
            format!("{}{}", doc.eol, doc.child_indent(parent))
        }
    }

    /// Where a new child `step` of `parent` goes: after its commented-out twin, else after the
    /// parent's last non-blank content (at the start of blank content; after the attributes
    /// of a self-closing parent).
    fn insert_anchor(&self, parent: usize, step: &Step) -> usize {
        let doc = self.doc;
        let el = &doc.elements[parent];
        match (&el.content, doc.commented_twin(parent, step)) {
            (_, Some(twin)) => twin.range.end,
            (None, None) => el.attrs_end,
            (Some(content), None) => {
                let (l, body) = ws_trim(&doc.text[content.clone()]);
                if body.is_empty() {
                    content.start
                } else {
                    content.start + l + body.len()
                }
            }
        }
    }

    /// The splice writing `pieces` (new children of `parent`) at `anchor`, opening a
    /// self-closing parent and closing blank one-line content on a new line.
    fn insert_splice(&self, parent: usize, anchor: usize, pieces: String, path: &str) -> Splice {
        let doc = self.doc;
        let (eol, el) = (doc.eol, &doc.elements[parent]);
        let parent_indent = doc.indent_str(&el.indent).unwrap_or("");
        let (range, text) = match &el.content {
            // `<P/>` becomes `<P>` + children + `</P>`.
            None if anchor == el.attrs_end => (
                el.attrs_end..el.start_tag.end,
                format!(">{pieces}{eol}{parent_indent}</{}>", el.qname),
            ),
            // Content without a line break (`<P></P>`, `<P> </P>`): close on a new line.
            Some(content)
                if anchor == content.start && !doc.text[content.clone()].contains('\n') =>
            {
                (content.clone(), format!("{pieces}{eol}{parent_indent}"))
            }
            _ => (anchor..anchor, pieces),
        };
        Splice {
            range,
            text,
            path: path.to_string(),
        }
    }
}

/// A splice and the change it makes, keyed by its position in the original text.
type Edit = (Splice, (usize, Change));

/// A new element `<name preds…>value</name>` after `lead`.
fn new_element(lead: &str, step: &Step, value: &str, charset: Charset) -> String {
    let mut piece = format!("{lead}<{}", step.name);
    for p in &step.preds {
        let v = p.value.as_deref().unwrap_or("");
        piece.push_str(&format!(
            " {}=\"{}\"",
            p.attr,
            escape(v, charset, Ctx::Attr(b'"'))
        ));
    }
    piece.push_str(&format!(
        ">{}</{}>",
        escape(value, charset, Ctx::Text),
        step.name
    ));
    piece
}

/// `text` with every splice written in, in position order. Error if two splices overlap.
fn splice_text(text: &str, splices: &mut [Splice]) -> Result<String, EditError> {
    // Stable sort: at one position, insertions (empty ranges) go before replacements.
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for s in splices.iter() {
        if s.range.start < at {
            return Err(EditError::Conflict {
                path: s.path.clone(),
            });
        }
        out.push_str(&text[at..s.range.start]);
        out.push_str(&s.text);
        at = s.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARBON: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>

<!--
 ~ Copyright notice of a fixture. <Server> tags in comments are not elements.
-->
<Server xmlns="http://wso2.org/projects/carbon/carbon.xml">

    <Name>Test Server</Name>

    <!--
       Host name or IP address of the machine hosting this server
    -->
    <!--<HostName>www.wso2.org</HostName>-->

    <!--
    Host name to be used for the management console
    -->
    <!--MgtHostName>mgt.wso2.org</MgtHostName-->

    <Ports>
        <!-- Ports offset. -->
        <Offset>0</Offset>
    </Ports>

    <Security>
        <KeyStore>
            <!-- Keystore file location-->
            <Location>${carbon.home}/repository/resources/security/wso2carbon.jks</Location>
            <Type>JKS</Type>
            <Password>ks-pass</Password>
            <KeyAlias>wso2carbon</KeyAlias>
            <KeyPassword>ks-key-pass</KeyPassword>
        </KeyStore>

        <InternalKeyStore>
            <Location>${carbon.home}/repository/resources/security/wso2carbon.jks</Location>
            <Type>JKS</Type>
            <Password>int-pass</Password>
            <KeyAlias>wso2carbon</KeyAlias>
            <KeyPassword>int-key-pass</KeyPassword>
        </InternalKeyStore>

        <TrustStore>
            <Location>${carbon.home}/repository/resources/security/client-truststore.jks</Location>
            <Type>JKS</Type>
            <Password>ts-pass</Password>
        </TrustStore>
    </Security>
</Server>
"#;

    fn apply(
        doc: &XmlDoc,
        f: impl FnOnce(&mut Edits) -> Result<(), EditError>,
    ) -> (String, Vec<Change>) {
        let mut e = Edits::new(doc);
        f(&mut e).expect("edits accepted");
        e.apply().expect("edits applied")
    }

    /// Replaces the one occurrence of `from` in `text` with `to`.
    fn replace_once(text: &str, from: &str, to: &str) -> String {
        assert_eq!(
            text.matches(from).count(),
            1,
            "fixture fragment {from:?} is not unique"
        );
        text.replacen(from, to, 1)
    }

    /// The original and the new text differ only in one window: the original's `old` at byte
    /// `at`, which became `new`.
    fn assert_single_splice(orig: &str, new: &str, at: usize, old: &str, replacement: &str) {
        assert_eq!(&orig[at..at + old.len()], old);
        assert_eq!(
            new.as_bytes()[..at],
            orig.as_bytes()[..at],
            "prefix changed"
        );
        assert_eq!(&new[at..at + replacement.len()], replacement);
        assert_eq!(
            new.as_bytes()[at + replacement.len()..],
            orig.as_bytes()[at + old.len()..],
            "suffix changed"
        );
    }

    #[test]
    fn reads_carbon_values_and_encoding() {
        let doc = XmlDoc::parse(CARBON).unwrap();
        assert_eq!(doc.declared_encoding().as_deref(), Some("ISO-8859-1"));
        assert_eq!(doc.line_ending(), "\n");
        assert_eq!(doc.texts("Server/Security/KeyStore/Password"), ["ks-pass"]);
        assert_eq!(
            doc.texts("Server/Security/TrustStore/Password"),
            ["ts-pass"]
        );
        assert_eq!(doc.texts("Server/Ports/Offset"), ["0"]);
        assert_eq!(doc.count("Server/Security/*/Password"), 3);
        assert_eq!(
            doc.count("Server/HostName"),
            0,
            "commented-out elements do not count"
        );
        assert_eq!(doc.count("Security/KeyStore"), 0, "paths start at the root");
        assert_eq!(
            doc.count("Server/Security/KeyStore["),
            0,
            "bad path matches nothing"
        );
        assert_eq!(doc.lines("Server/Ports/Offset"), [22]);
        assert!(!doc.is_secured("Server/Security/KeyStore/Password"));
    }

    #[test]
    fn set_text_touches_only_the_value_bytes() {
        let doc = XmlDoc::parse(CARBON).unwrap();
        let (new, changes) = apply(&doc, |e| {
            e.set_text("Server/Security/KeyStore/Password", "n3w")
        });
        let at = CARBON.find("<Password>ks-pass").unwrap() + "<Password>".len();
        assert_single_splice(CARBON, &new, at, "ks-pass", "n3w");
        assert_eq!(
            changes,
            [Change {
                path: "Server/Security/KeyStore/Password".into(),
                line: 30,
                old: Some("ks-pass".into()),
                new: "n3w".into(),
            }]
        );
    }

    #[test]
    fn carbon_keystores_set_together_and_idempotent() {
        let doc = XmlDoc::parse(CARBON).unwrap();
        let loc = "${carbon.home}/repository/resources/security/wso2carbon.p12";
        let tloc = "${carbon.home}/repository/resources/security/client-truststore.p12";
        let edit = |e: &mut Edits| -> Result<(), EditError> {
            for ks in ["KeyStore", "InternalKeyStore"] {
                e.set_text(&format!("Server/Security/{ks}/Location"), loc)?;
                e.set_text(&format!("Server/Security/{ks}/Type"), "PKCS12")?;
                e.set_text(&format!("Server/Security/{ks}/Password"), "s3cret&<x>")?;
                e.set_text(&format!("Server/Security/{ks}/KeyAlias"), "wso2carbon")?;
                e.set_text(&format!("Server/Security/{ks}/KeyPassword"), "s3cret&<x>")?;
            }
            e.set_text("Server/Security/TrustStore/Location", tloc)?;
            e.set_text("Server/Security/TrustStore/Type", "PKCS12")?;
            e.set_text("Server/Security/TrustStore/Password", "trust")?;
            e.set_text("Server/Ports/Offset", "2")?;
            e.ensure_text("Server/HostName", "lb.example.com")?;
            e.ensure_text("Server/MgtHostName", "lb.example.com")
        };
        let (new, changes) = apply(&doc, edit);

        // Exactly these fragments changed; every other byte is the original's.
        let mut expected = CARBON.to_string();
        let jks = "security/wso2carbon.jks</Location>";
        expected = expected.replace(jks, "security/wso2carbon.p12</Location>");
        expected = replace_once(
            &expected,
            "client-truststore.jks</Location>",
            "client-truststore.p12</Location>",
        );
        expected = expected.replace("<Type>JKS</Type>", "<Type>PKCS12</Type>");
        for old in ["ks-pass", "ks-key-pass", "int-pass", "int-key-pass"] {
            expected = replace_once(&expected, &format!(">{old}<"), ">s3cret&amp;&lt;x&gt;<");
        }
        expected = replace_once(&expected, ">ts-pass<", ">trust<");
        expected = replace_once(&expected, "<Offset>0</Offset>", "<Offset>2</Offset>");
        expected = replace_once(
            &expected,
            "<!--<HostName>www.wso2.org</HostName>-->",
            "<!--<HostName>www.wso2.org</HostName>-->\n    <HostName>lb.example.com</HostName>",
        );
        expected = replace_once(
            &expected,
            "<!--MgtHostName>mgt.wso2.org</MgtHostName-->",
            "<!--MgtHostName>mgt.wso2.org</MgtHostName-->\n    <MgtHostName>lb.example.com</MgtHostName>",
        );
        assert_eq!(new, expected);
        // KeyAlias was already wso2carbon: not a change. 4 + 4 + 3 + 1 + 2.
        assert_eq!(changes.len(), 14);
        assert!(changes.iter().all(|c| !c.path.ends_with("KeyAlias")));
        let host: Vec<&Change> = changes
            .iter()
            .filter(|c| c.path == "Server/HostName")
            .collect();
        assert_eq!(host.len(), 1);
        assert_eq!(host[0].old, None);

        // Read back, then apply the same edits again: nothing changes.
        let again = XmlDoc::parse(&new).unwrap();
        assert_eq!(again.texts("Server/HostName"), ["lb.example.com"]);
        assert_eq!(
            again.texts("Server/Security/InternalKeyStore/Password"),
            ["s3cret&<x>"]
        );
        let (newer, changes) = apply(&again, edit);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(newer, new);
    }

    #[test]
    fn ensure_text_without_twin_goes_last_with_sibling_indent() {
        let text =
            "<Server xmlns=\"urn:x\">\n  <Name>a</Name>\n  <!-- trailing note -->\n\n</Server>\n";
        let doc = XmlDoc::parse(text).unwrap();
        let (new, changes) = apply(&doc, |e| e.ensure_text("Server/HostName", "h.example"));
        assert_eq!(
            new,
            "<Server xmlns=\"urn:x\">\n  <Name>a</Name>\n  <!-- trailing note -->\n  <HostName>h.example</HostName>\n\n</Server>\n"
        );
        assert_eq!(changes[0].old, None);
        // Existing element: behaves like set_text.
        let doc = XmlDoc::parse(&new).unwrap();
        let (newer, changes) = apply(&doc, |e| e.ensure_text("Server/HostName", "other"));
        assert_eq!(newer, new.replace("h.example", "other"));
        assert_eq!(changes[0].old.as_deref(), Some("h.example"));
    }

    #[test]
    fn ensure_text_in_empty_and_self_closing_parents() {
        let text = "<a>\n    <b></b>\n    <c/>\n    <d>\n    </d>\n</a>";
        let doc = XmlDoc::parse(text).unwrap();
        let (new, _) = apply(&doc, |e| {
            e.ensure_text("a/b/x", "1")?;
            e.ensure_text("a/b/y", "2")?;
            e.ensure_text("a/c/x", "3")?;
            e.set_attr("a/c", "k", "v")?;
            e.ensure_text("a/d/parameter[@name='p']", "4")
        });
        assert_eq!(
            new,
            "<a>\n    <b>\n        <x>1</x>\n        <y>2</y>\n    </b>\n    <c k=\"v\">\n        <x>3</x>\n    </c>\n    <d>\n        <parameter name=\"p\">4</parameter>\n    </d>\n</a>"
        );
        let doc = XmlDoc::parse(&new).unwrap();
        assert_eq!(doc.texts("a/d/parameter[@name='p']"), ["4"]);
    }

    #[test]
    fn ensure_text_errors_name_the_parent() {
        let doc = XmlDoc::parse(CARBON).unwrap();
        let mut e = Edits::new(&doc);
        assert_eq!(
            e.ensure_text("Server/Clustering/HostName", "x"),
            Err(EditError::ParentNotFound {
                path: "Server/Clustering/HostName".into(),
                parent: "Server/Clustering".into()
            })
        );
        assert!(e.ensure_text("Server", "x").is_err());
        let err = e.ensure_text("Server/Nope/HostName", "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "element Server/Nope not found (needed for Server/Nope/HostName)"
        );
    }

    #[test]
    fn missing_element_error_names_path_and_nothing_is_half_applied() {
        let text =
            "<Server><Security><KeyStore><Password>a</Password></KeyStore></Security></Server>";
        let doc = XmlDoc::parse(text).unwrap();
        let mut e = Edits::new(&doc);
        e.set_text("Server/Security/KeyStore/Password", "b")
            .unwrap();
        let err = e
            .set_text("Server/Security/InternalKeyStore/Password", "b")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "element Server/Security/InternalKeyStore/Password not found"
        );
        assert!(matches!(
            e.set_text("Server/Security", "x"),
            Err(EditError::HasChildren { .. })
        ));
        assert!(matches!(
            e.set_text("Server/Security[@x", "x"),
            Err(EditError::BadPath { .. })
        ));
        assert!(matches!(
            e.set_attr("Server", "bad name", "x"),
            Err(EditError::BadAttrName { .. })
        ));
        assert!(matches!(
            e.set_text("Server/Security/KeyStore/Password", "a\u{1}"),
            Err(EditError::InvalidValue { code: 1, .. })
        ));
        // The failed calls recorded nothing; the good one still applies.
        let (new, changes) = e.apply().unwrap();
        assert_eq!(new, text.replace(">a<", ">b<"));
        assert_eq!(changes.len(), 1);
    }

    const AXIS2: &str = r#"<axisconfig name="AxisJava2.0">
    <transportReceiver name="http" class="org.apache.synapse.transport.passthru.PassThroughHttpListener">
        <parameter name="port" locked="false">8280</parameter>
    </transportReceiver>
    <transportReceiver name="https" class="org.apache.synapse.transport.passthru.PassThroughHttpSSLListener">
        <parameter name="port" locked="false">8243</parameter>
        <parameter name="keystore" locked="false">
            <KeyStore>
                <Location>repository/resources/security/wso2carbon.jks</Location>
                <Type>JKS</Type>
                <Password>wso2carbon</Password>
                <KeyPassword>wso2carbon</KeyPassword>
            </KeyStore>
        </parameter>
        <parameter name="truststore" locked="false">
            <TrustStore>
                <Location>repository/resources/security/client-truststore.jks</Location>
                <Type>JKS</Type>
                <Password>wso2carbon</Password>
            </TrustStore>
        </parameter>
    </transportReceiver>
    <transportSender name="https" class="org.apache.synapse.transport.passthru.PassThroughHttpSSLSender">
        <parameter name="keystore" locked="false">
            <KeyStore>
                <Location>repository/resources/security/wso2carbon.jks</Location>
                <Password>wso2carbon</Password>
            </KeyStore>
        </parameter>
    </transportSender>
</axisconfig>
"#;

    #[test]
    fn axis2_predicates_select_the_right_transport() {
        let doc = XmlDoc::parse(AXIS2).unwrap();
        let recv = "axisconfig/transportReceiver[@name='https']";
        assert_eq!(doc.count(recv), 1);
        assert_eq!(doc.count("axisconfig/transportReceiver[@name=\"http\"]"), 1);
        assert_eq!(doc.count("axisconfig/transportReceiver"), 2);
        assert_eq!(doc.count("axisconfig/*[@name='https']"), 2);
        assert_eq!(
            doc.count("axisconfig/transportReceiver[@name='https'][@locked]"),
            0
        );
        let loc = format!("{recv}/parameter[@name='keystore']/KeyStore/Location");
        assert_eq!(
            doc.texts(&loc),
            ["repository/resources/security/wso2carbon.jks"]
        );
        assert_eq!(
            doc.attrs(&format!("{recv}/parameter"), "locked"),
            ["false"; 3]
        );
        assert_eq!(
            doc.texts(&format!("{recv}/parameter[@name='port']")),
            ["8243"]
        );

        let (new, changes) = apply(&doc, |e| {
            e.set_text(&loc, "repository/resources/security/tls.p12")?;
            e.set_text(
                "axisconfig/*[@name='https']/parameter[@name='keystore']/KeyStore/Password",
                "pw",
            )
        });
        assert_eq!(changes.len(), 3);
        let after = XmlDoc::parse(&new).unwrap();
        assert_eq!(
            after.texts("axisconfig/transportSender/parameter/KeyStore/Location"),
            ["repository/resources/security/wso2carbon.jks"],
            "the sender's location was not addressed"
        );
        assert_eq!(
            after.texts("axisconfig/*/parameter[@name='keystore']/KeyStore/Password"),
            ["pw", "pw"]
        );
        assert_eq!(
            after.texts(
                "axisconfig/transportReceiver/parameter[@name='truststore']/TrustStore/Password"
            ),
            ["wso2carbon"]
        );
        let at = AXIS2
            .find("repository/resources/security/wso2carbon.jks")
            .unwrap();
        let only_loc = apply(&doc, |e| {
            e.set_text(&loc, "repository/resources/security/tls.p12")
        })
        .0;
        assert_single_splice(
            AXIS2,
            &only_loc,
            at,
            "repository/resources/security/wso2carbon.jks",
            "repository/resources/security/tls.p12",
        );
    }

    const CATALINA: &str = r#"<Server port="8005" shutdown="SHUTDOWN">
    <Service className="org.wso2.carbon.tomcat.ext.service.ExtendedStandardService"
             name="Catalina">
        <Connector protocol="org.apache.coyote.http11.Http11NioProtocol"
                   port="9763"
                   redirectPort="9443"/>
        <Connector  protocol="org.apache.coyote.http11.Http11NioProtocol"
                   port='9443'
                   SSLEnabled="true"
                   keystoreFile="${carbon.home}/repository/resources/security/wso2carbon.jks"
                   keystorePass="wso2carbon"
                   URIEncoding="UTF-8"/>
        <Engine name="Catalina" defaultHost="localhost"/>
    </Service>
</Server>
"#;

    #[test]
    fn catalina_connector_attributes() {
        let doc = XmlDoc::parse(CATALINA).unwrap();
        let conn = "Server/Service/Connector[@port='9443']";
        assert_eq!(doc.count("Server/Service/Connector"), 2);
        assert_eq!(doc.attrs(conn, "keystorePass"), ["wso2carbon"]);
        let (new, changes) = apply(&doc, |e| {
            e.set_attr(
                conn,
                "keystoreFile",
                "${carbon.home}/repository/resources/security/tls.p12",
            )?;
            e.set_attr(conn, "keystorePass", "it's \"q\" & <b>")?;
            e.set_attr(conn, "keystoreType", "PKCS12")
        });
        let mut expected =
            replace_once(CATALINA, "security/wso2carbon.jks\"", "security/tls.p12\"");
        expected = replace_once(
            &expected,
            "keystorePass=\"wso2carbon\"",
            "keystorePass=\"it's &quot;q&quot; &amp; &lt;b&gt;\"",
        );
        expected = replace_once(
            &expected,
            "URIEncoding=\"UTF-8\"/>",
            "URIEncoding=\"UTF-8\" keystoreType=\"PKCS12\"/>",
        );
        assert_eq!(new, expected);
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[2].path, format!("{conn}/@keystoreType"));
        assert_eq!(changes[2].old, None);
        assert_eq!(changes[1].old.as_deref(), Some("wso2carbon"));
        assert_eq!(changes[1].line, 7);

        let after = XmlDoc::parse(&new).unwrap();
        assert_eq!(after.attrs(conn, "keystorePass"), ["it's \"q\" & <b>"]);
        assert_eq!(after.attrs(conn, "keystoreType"), ["PKCS12"]);
        let (same, changes) = apply(&after, |e| {
            e.set_attr(conn, "keystorePass", "it's \"q\" & <b>")?;
            e.set_attr(conn, "keystoreType", "PKCS12")
        });
        assert!(changes.is_empty());
        assert_eq!(same, new);

        // A single-quoted value keeps its quote; a ' inside is escaped.
        let (q, _) = apply(&doc, |e| e.set_attr(conn, "port", "9'4"));
        assert!(q.contains("port='9&apos;4'"), "{q}");
        assert!(matches!(
            Edits::new(&doc).set_attr("Server/Service/Connector[@port='9444']", "a", "b"),
            Err(EditError::NotFound { .. })
        ));
    }

    const API_MANAGER: &str = r#"<APIManager>
    <APIGateway>
        <Environments>
            <Environment type="hybrid" api-console="true">
                <Name>Production and Sandbox</Name>
                <ServerURL>https://localhost:${mgt.transport.https.port}${carbon.context}services/</ServerURL>
                <GatewayEndpoint>http://${carbon.local.ip}:${http.nio.port},https://${carbon.local.ip}:${https.nio.port}</GatewayEndpoint>
            </Environment>
            <Environment type="production" api-console="false">
                <Name>Second</Name>
                <ServerURL>https://gw2:9443/services/</ServerURL>
                <GatewayEndpoint>http://gw2:8280,https://gw2:8243</GatewayEndpoint>
            </Environment>
        </Environments>
    </APIGateway>
    <APIKeyValidator>
        <ServerURL>https://localhost:9443/services/</ServerURL>
        <KeyValidatorClientType>ThriftClient</KeyValidatorClientType>
        <!--ThriftClientPort>10397</ThriftClientPort-->
        <EnableThriftServer>true</EnableThriftServer>
    </APIKeyValidator>
    <ThrottlingConfigurations>
        <TrafficManager>
            <Type>Binary</Type>
            <ReceiverUrlGroup>tcp://${carbon.local.ip}:${receiver.url.port}</ReceiverUrlGroup>
            <Password><![CDATA[${admin.password}]]></Password>
        </TrafficManager>
    </ThrottlingConfigurations>
</APIManager>
"#;

    #[test]
    fn api_manager_every_environment_is_updated() {
        let doc = XmlDoc::parse(API_MANAGER).unwrap();
        let env = "APIManager/APIGateway/Environments/Environment";
        assert_eq!(doc.count(env), 2);
        assert_eq!(doc.attrs(env, "type"), ["hybrid", "production"]);
        let (new, changes) = apply(&doc, |e| {
            e.set_text(&format!("{env}/ServerURL"), "https://gw:9443/services/")?;
            e.set_text(
                &format!("{env}/GatewayEndpoint"),
                "http://gw:8280,https://gw:8243",
            )?;
            e.ensure_text("APIManager/APIKeyValidator/ThriftClientPort", "10400")?;
            e.set_text(
                "APIManager/ThrottlingConfigurations/TrafficManager/ReceiverUrlGroup",
                "{tcp://tm1:9611}, {tcp://tm2:9611}",
            )
        });
        assert_eq!(changes.len(), 6);
        let after = XmlDoc::parse(&new).unwrap();
        assert_eq!(
            after.texts(&format!("{env}/ServerURL")),
            ["https://gw:9443/services/"; 2]
        );
        // In document order, each with its own element's line.
        assert_eq!(changes[0].line, 6);
        assert_eq!(changes[2].line, 11);
        assert!(new.contains(
            "<!--ThriftClientPort>10397</ThriftClientPort-->\n        <ThriftClientPort>10400</ThriftClientPort>\n        <EnableThriftServer>"
        ));
        assert_eq!(
            after.texts("APIManager/ThrottlingConfigurations/TrafficManager/ReceiverUrlGroup"),
            ["{tcp://tm1:9611}, {tcp://tm2:9611}"]
        );
    }

    #[test]
    fn cdata_pi_and_doctype_pass_through() {
        let text = "<?xml version='1.0'?>\n<!DOCTYPE cfg [\n  <!ENTITY home \"/opt/x\">\n  <!-- a ] and > in a DTD comment -->\n]>\n<?custom-pi keep <me> ?>\n<cfg>\n  <p><![CDATA[a<b>&c]]></p>\n  <q>&home;/lib &amp; &#233;&#xE9;</q>\n  <?inner pi?>\n  <r>x</r>\n</cfg>\n<!-- tail -->\n";
        let doc = XmlDoc::parse(text).unwrap();
        assert_eq!(doc.declared_encoding(), None);
        assert_eq!(doc.texts("cfg/p"), ["a<b>&c"]);
        assert_eq!(doc.texts("cfg/q"), ["&home;/lib & éé"]);
        let (new, _) = apply(&doc, |e| e.set_text("cfg/r", "y"));
        assert_eq!(new, text.replace("<r>x</r>", "<r>y</r>"));
        // A sole CDATA section keeps its form.
        let (new, changes) = apply(&doc, |e| e.set_text("cfg/p", "<new>&"));
        assert_eq!(new, text.replace("a<b>&c", "<new>&"));
        assert_eq!(changes[0].old.as_deref(), Some("a<b>&c"));
        let (new, _) = apply(&doc, |e| e.set_text("cfg/p", "x]]>y"));
        assert!(new.contains("<p>x]]&gt;y</p>"), "{new}");
    }

    #[test]
    fn special_characters_and_iso_8859_1() {
        let text =
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<a>\r\n\t<b>old</b>\r\n</a>\r\n";
        let doc = XmlDoc::parse(text).unwrap();
        assert_eq!(doc.line_ending(), "\r\n");
        let (new, changes) = apply(&doc, |e| e.set_text("a/b", "é€ & <x> \"q\""));
        assert_eq!(new, text.replace("old", "é&#8364; &amp; &lt;x&gt; \"q\""));
        assert_eq!(changes[0].new, "é€ & <x> \"q\"");
        let after = XmlDoc::parse(&new).unwrap();
        assert_eq!(after.texts("a/b"), ["é€ & <x> \"q\""]);
        // Writing the same value again (read back through its references) is no change.
        let (_, changes) = apply(&after, |e| e.set_text("a/b", "é€ & <x> \"q\""));
        assert!(changes.is_empty());

        assert_eq!(
            escape_for(Some("ISO-8859-1"), "é€\"&"),
            "é&#8364;&quot;&amp;"
        );
        assert_eq!(escape_for(Some("UTF-8"), "é€<"), "é€&lt;");
        assert_eq!(escape_for(None, "€"), "€");
        assert_eq!(escape_for(Some("US-ASCII"), "é"), "&#233;");
        assert_eq!(escape_for(Some("windows-1252"), "é"), "&#233;");
        let utf8 = XmlDoc::parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a><b/></a>").unwrap();
        let (new, _) = apply(&utf8, |e| e.set_text("a/b", "€"));
        assert_eq!(
            new,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a><b>€</b></a>"
        );
    }

    #[test]
    fn crlf_preserved_for_inserted_elements() {
        let text = "<Server>\r\n    <Name>n</Name>\r\n    <!--HostName>www.wso2.org</HostName-->\r\n    <Ports/>\r\n</Server>\r\n";
        let doc = XmlDoc::parse(text).unwrap();
        let (new, _) = apply(&doc, |e| {
            e.ensure_text("Server/HostName", "h")?;
            e.ensure_text("Server/Ports/Offset", "1")?;
            e.set_text("Server/Name", "m")
        });
        assert_eq!(
            new,
            "<Server>\r\n    <Name>m</Name>\r\n    <!--HostName>www.wso2.org</HostName-->\r\n    <HostName>h</HostName>\r\n    <Ports>\r\n        <Offset>1</Offset>\r\n    </Ports>\r\n</Server>\r\n"
        );
        assert!(!new.replace("\r\n", "").contains('\n'), "no bare LF");
    }

    #[test]
    fn secure_vault_marker_is_reported() {
        let text = "<Server xmlns:svns=\"http://org.wso2.securevault/configuration\">\n  <Security>\n    <KeyStore>\n      <Password svns:secretAlias=\"Carbon.Security.KeyStore.Password\">password</Password>\n    </KeyStore>\n    <TrustStore><Password>p</Password></TrustStore>\n  </Security>\n</Server>";
        let doc = XmlDoc::parse(text).unwrap();
        assert!(doc.is_secured("Server/Security/KeyStore/Password"));
        assert!(!doc.is_secured("Server/Security/TrustStore/Password"));
        assert!(doc.is_secured("Server/Security/*/Password"));
        assert_eq!(
            doc.attrs("Server/Security/KeyStore/Password", "secretAlias"),
            ["Carbon.Security.KeyStore.Password"]
        );
    }

    #[test]
    fn comment_containing_tags_is_not_an_element() {
        let text = "<a>\n  <!--<b>1</b>\n  <c x='1'/>-->\n  <b>2</b>\n</a>";
        let doc = XmlDoc::parse(text).unwrap();
        assert_eq!(doc.texts("a/b"), ["2"]);
        assert_eq!(doc.count("a/c"), 0);
        let (new, _) = apply(&doc, |e| e.ensure_text("a/c", "z"));
        assert_eq!(
            new,
            "<a>\n  <!--<b>1</b>\n  <c x='1'/>-->\n  <c>z</c>\n  <b>2</b>\n</a>"
        );
    }

    #[test]
    fn later_edit_of_same_value_wins_and_conflicts_are_refused() {
        let doc = XmlDoc::parse("<a><b>1</b><c></c></a>").unwrap();
        let (new, changes) = apply(&doc, |e| {
            e.set_text("a/b", "2")?;
            e.set_text("a/b", "3")
        });
        assert_eq!(new, "<a><b>3</b><c></c></a>");
        assert_eq!(changes.len(), 1);
        let mut e = Edits::new(&doc);
        e.set_text("a/c", "t").unwrap();
        e.ensure_text("a/c/d", "u").unwrap();
        assert_eq!(e.apply(), Err(EditError::Conflict { path: "a/c".into() }));
        // No edits: the text comes back unchanged.
        assert_eq!(
            Edits::new(&doc).apply().unwrap(),
            (doc.text().to_string(), vec![])
        );
    }

    fn parse_err(text: &str) -> (usize, Malformed) {
        match XmlDoc::parse(text) {
            Err(XmlError::Parse { line, problem }) => (line, problem),
            Ok(_) => panic!("parsed: {text:?}"),
        }
    }

    #[test]
    fn malformed_xml_reports_the_line() {
        let (line, problem) = parse_err("<a>\n  <b>\n  </c>\n</a>");
        assert_eq!(line, 3);
        let (c, b) = ("c".to_string(), "b".to_string());
        let mismatched = Malformed::MismatchedEndTag {
            element: c,
            open: b,
            line: 2,
        };
        assert_eq!(problem, mismatched);
        let text = "end tag </c> does not match <b> (line 2)";
        assert_eq!(problem.to_string(), text);
        let err = XmlDoc::parse("<a>\n</b>").unwrap_err();
        let text = "line 2: end tag </b> does not match <a> (line 1)";
        assert_eq!(err.to_string(), text);
        let err = XmlDoc::parse("<a>\n<b>R&D</b></a>").unwrap_err();
        let text = "line 2: '&' that does not start an entity or character reference";
        assert_eq!(err.to_string(), text);
    }

    #[test]
    fn each_malformation_is_named_at_its_line() {
        let (a, b, x) = (|| "a".to_string(), || "b".to_string(), || "x".to_string());
        #[rustfmt::skip]
        let cases: [(&str, usize, Malformed); 11] = [
            ("<a>\n<b>x</b>\n", 3, Malformed::UnclosedElement { element: a(), line: 1 }),
            ("<a>\n<!-- open\n</a>", 2, Malformed::UnclosedComment),
            ("<a>\n\n<b x=1/></a>", 3, Malformed::UnquotedAttribute { attr: x() }),
            ("<a>\n<b x='1' x='2'/></a>", 2, Malformed::DuplicateAttribute { attr: x(), element: b() }),
            ("<a>\n<b>R&D</b></a>", 2, Malformed::BadReference),
            ("<a/>\n<b/>", 2, Malformed::SecondRoot { element: b() }),
            ("<a/>\ntext", 2, Malformed::TextOutsideRoot),
            ("", 1, Malformed::NoRoot),
            ("<a>\n<b attr=\"x\"\n", 2, Malformed::UnclosedStartTag { element: b() }),
            ("<a><![CDATA[x</a>", 1, Malformed::UnclosedCdata),
            ("<a>\n <?xml version='1.0'?></a>", 2, Malformed::LateXmlDeclaration),
        ];
        for (text, line, problem) in cases {
            assert_eq!(parse_err(text), (line, problem), "{text:?}");
        }
    }

    #[test]
    fn bom_and_namespaced_elements() {
        let text = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ns:root xmlns:ns=\"urn:n\"><ns:item ns:id=\"1\">v</ns:item></ns:root>";
        let doc = XmlDoc::parse(text).unwrap();
        assert_eq!(doc.declared_encoding().as_deref(), Some("UTF-8"));
        assert_eq!(doc.texts("root/item[@id='1']"), ["v"]);
        assert_eq!(doc.texts("ns:root/ns:item"), ["v"]);
        let (new, _) = apply(&doc, |e| e.set_text("root/item", "w"));
        assert_eq!(new, text.replace(">v<", ">w<"));
    }

    #[test]
    fn comments_and_line_breaks_inside_a_value_are_kept() {
        let text = "<a>\n  <off><!-- offset --> 0</off>\n  <host><!-- set me --></host>\n  <loc>\n    old/path\n  </loc>\n  <pi><?keep me?>v</pi>\n  <mixed>1<!-- c -->2</mixed>\n</a>";
        let doc = XmlDoc::parse(text).unwrap();
        let (new, changes) = apply(&doc, |e| {
            e.set_text("a/off", "2")?;
            e.set_text("a/host", "h")?;
            e.set_text("a/loc", "new/path")?;
            e.set_text("a/pi", "w")
        });
        assert_eq!(
            new,
            "<a>\n  <off><!-- offset --> 2</off>\n  <host><!-- set me -->h</host>\n  <loc>\n    new/path\n  </loc>\n  <pi><?keep me?>w</pi>\n  <mixed>1<!-- c -->2</mixed>\n</a>"
        );
        let olds: Vec<Option<&str>> = changes.iter().map(|c| c.old.as_deref()).collect();
        assert_eq!(olds, [Some("0"), Some(""), Some("old/path"), Some("v")]);
        let again = XmlDoc::parse(&new).unwrap();
        let (same, changes) = apply(&again, |e| {
            e.set_text("a/off", "2")?;
            e.set_text("a/host", "h")?;
            e.set_text("a/loc", "new/path")?;
            e.set_text("a/pi", "w")
        });
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(same, new);
        assert_eq!(
            Edits::new(&doc).set_text("a/mixed", "3"),
            Err(EditError::MixedContent {
                path: "a/mixed".into(),
                line: 8
            })
        );
    }

    #[test]
    fn one_line_parent_gets_its_new_child_on_that_line() {
        let doc = XmlDoc::parse("<a>\n  <p><x>1</x></p>\n</a>").unwrap();
        let (new, _) = apply(&doc, |e| e.ensure_text("a/p/y", "2"));
        assert_eq!(new, "<a>\n  <p><x>1</x><y>2</y></p>\n</a>");
    }

    /// Every leaf of every fixture (text, CDATA, ISO-8859-1): set a hostile value, read it back, set the old value back
    /// and get the original bytes.
    #[test]
    fn every_leaf_round_trips() {
        for fixture in [CARBON, AXIS2, API_MANAGER] {
            let doc = XmlDoc::parse(fixture).unwrap();
            for idx in 0..doc.elements.len() {
                if !doc.elements[idx].children.is_empty() {
                    continue;
                }
                let old = doc.text_of(idx);
                // (A value with `]]>` turns a CDATA section into escaped text: tested above.)
                let value = "X & <y> \"é€\" ]]";
                let mut e = Edits::new(&doc);
                e.push_text(idx, "leaf", value);
                let (new, changes) = e.apply().unwrap();
                assert_eq!(changes.len(), 1);
                let after = XmlDoc::parse(&new).unwrap();
                assert_eq!(after.elements.len(), doc.elements.len());
                assert_eq!(after.text_of(idx), value);
                let start = doc.elements[idx].start_tag.start;
                assert!(
                    new[..start] == fixture[..start],
                    "bytes before the element changed"
                );
                let mut back = Edits::new(&after);
                back.push_text(idx, "leaf", &old);
                let (restored, _) = back.apply().unwrap();
                assert!(restored == fixture, "element {idx} did not round-trip");
            }
        }
    }
}
