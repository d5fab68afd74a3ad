//! A lossless TOML merge: writes the tables of a patch document into a base document and keeps
//! everything else of the base byte for byte (comments, blank lines, key order, tables the patch
//! does not name, CRLF line ends). Knows nothing of WSO2: the caller says which arrays of tables
//! it owns and which existing values must be kept.
//!
//! - A table of the patch is updated in place: each key is set where it already is (its
//!   surrounding whitespace and comment kept), or appended to the table. A table found in the base
//!   as an inline table (`tls = { ... }`) or through dotted keys (`tls.alias = "x"`) is edited in
//!   that form: never a second definition.
//! - An array of tables of the patch follows its [`ArrayRule`]: entries are matched by a key field
//!   (or by position), matched entries are updated in place, new ones appended, and unmatched base
//!   entries dropped or kept. An array written as inline tables is rewritten as `[[...]]` entries.
//! - A value equal to the one in the base is not touched, so a second merge changes nothing.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value};

/// What to do with an array of tables the patch writes.
#[derive(Debug, Clone, Copy)]
pub struct ArrayRule {
    /// Dotted path of the array (`apim.gateway.environment`).
    pub path: &'static str,
    /// The field that identifies an entry; `None` matches entries by position.
    pub key: Option<&'static str>,
    /// Keep base entries the patch does not match (else they are dropped: the array is owned).
    pub keep_others: bool,
}

/// Decides whether an existing value stays although the patch has another one:
/// `(table path, key, existing value) -> keep`.
pub type KeepFn = fn(&str, &str, &Value) -> bool;

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The arrays of tables with a rule; any other array of the patch is matched by position
    /// and owned (base entries it does not match are dropped).
    pub arrays: Vec<ArrayRule>,
    /// Which existing values stay although the patch has another one; `None`: the patch wins.
    pub keep: Option<KeepFn>,
    /// A top-level table that must end the file: tables the merge adds go before it, and
    /// comments after the last table move above its header.
    pub last: Option<&'static str>,
}

/// The merged text and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The merged document.
    pub text: String,
    /// Dotted keys set or added (`keystore.tls.alias`, `apim.gateway.environment[0].name`).
    pub changed: Vec<String>,
    /// Dotted keys whose existing value was kept by [`Rules::keep`].
    pub kept: Vec<String>,
    /// Array entries dropped (`apim.gateway.environment[1]`).
    pub dropped: Vec<String>,
}

/// What a TOML item is, in [`MergeError::Shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// No item.
    Nothing,
    /// An inline table (`tls = { ... }`).
    InlineTable,
    /// An array value (`a = [1, 2]`).
    Array,
    /// Any other value (string, number, boolean, date).
    Value,
    /// A table (`[server]`, or implicit through a dotted key).
    Table,
    /// An array of tables (`[[env]]`).
    ArrayOfTables,
}

impl ItemKind {
    /// What `item` is.
    pub fn of(item: &Item) -> ItemKind {
        match item {
            Item::None => ItemKind::Nothing,
            Item::Value(Value::InlineTable(_)) => ItemKind::InlineTable,
            Item::Value(Value::Array(_)) => ItemKind::Array,
            Item::Value(_) => ItemKind::Value,
            Item::Table(_) => ItemKind::Table,
            Item::ArrayOfTables(_) => ItemKind::ArrayOfTables,
        }
    }

    /// The name without an article: `array of tables`.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Nothing => "nothing",
            ItemKind::InlineTable => "inline table",
            ItemKind::Array => "array",
            ItemKind::Value => "value",
            ItemKind::Table => "table",
            ItemKind::ArrayOfTables => "array of tables",
        }
    }

    /// The name with its article: `an array of tables`, `nothing`.
    pub fn with_article(self) -> String {
        match self {
            ItemKind::Nothing => "nothing".into(),
            ItemKind::InlineTable | ItemKind::Array | ItemKind::ArrayOfTables => {
                format!("an {}", self.name())
            }
            ItemKind::Value | ItemKind::Table => format!("a {}", self.name()),
        }
    }
}

/// Why a merge failed; nothing is produced.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// The base (or patch) is not valid TOML: `parser` is toml_edit's error (what is malformed,
    /// and where); the message shows its first line.
    #[error("not valid TOML (line {line}, column {column}): {}", .parser.message().trim())]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The parser's error (not a `source`: its text is already in this message).
        parser: Box<toml_edit::TomlError>,
    },
    /// The base holds something else where the patch has a table or a value.
    #[error("`{path}` is {} here, where {} belongs", .found.with_article(), .expected.with_article())]
    Shape {
        /// Dotted path of the item.
        path: String,
        /// What the base holds there.
        found: ItemKind,
        /// What the patch needs there.
        expected: ItemKind,
    },
}

/// Parses `text`, reporting a syntax error with its line and column.
pub fn parse(text: &str) -> Result<DocumentMut, MergeError> {
    text.parse::<DocumentMut>().map_err(|parser| {
        let (line, column) = parser
            .span()
            .map(|s| line_col(text, s.start))
            .unwrap_or((1, 1));
        MergeError::Syntax {
            line,
            column,
            parser: Box::new(parser),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Merges `patch` into `base` under `rules`.
pub fn merge(base: &str, patch: &str, rules: &Rules) -> Result<Merged, MergeError> {
    let mut doc = parse(base)?;
    let patch = parse(patch)?;
    let mut m = Merger {
        rules,
        out: Merged {
            text: String::new(),
            changed: Vec::new(),
            kept: Vec::new(),
            dropped: Vec::new(),
        },
    };
    m.table(doc.as_table_mut(), patch.as_table(), "")?;
    keep_last(&mut doc, rules.last);
    let mut text = doc.to_string();
    if base.contains("\r\n") {
        text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    m.out.text = text;
    Ok(m.out)
}

/// Moves table `name` to the end of `doc`, the document's trailing comments above its header.
fn keep_last(doc: &mut DocumentMut, name: Option<&str>) {
    let Some(name) = name else { return };
    let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
    if !matches!(doc.get(name), Some(Item::Table(_))) {
        return;
    }
    // Last in item order (so tables without a position are placed before it) and last by
    // position.
    let item = doc.remove(name).expect("present");
    doc.insert(name, item);
    let Some(Item::Table(t)) = doc.get_mut(name) else {
        return;
    };
    t.set_position(Some(isize::MAX));
    if !trailing.trim().is_empty() {
        let prefix = t
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_string();
        let moved = format!("{}\n{}", trailing.trim_end(), prefix);
        let moved = if moved.ends_with('\n') {
            moved
        } else {
            format!("{moved}\n")
        };
        t.decor_mut().set_prefix(moved);
        doc.set_trailing("");
    }
}

struct Merger<'r> {
    rules: &'r Rules,
    out: Merged,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Two values equal when they render the same without their surrounding whitespace.
fn same(a: &Value, b: &Value) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.decor_mut().clear();
    b.decor_mut().clear();
    a.to_string().trim() == b.to_string().trim()
}

/// A table copied from the patch: no document positions, so it renders next to its siblings.
fn detached(t: &Table) -> Table {
    let mut t = t.clone();
    clear_positions(&mut t);
    t
}

fn clear_positions(t: &mut Table) {
    t.set_position(None);
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(sub) => clear_positions(sub),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(clear_positions),
            _ => {}
        }
    }
}

impl Merger<'_> {
    fn table(
        &mut self,
        base: &mut dyn TableLike,
        patch: &dyn TableLike,
        path: &str,
    ) -> Result<(), MergeError> {
        for (key, item) in patch.iter() {
            let here = join(path, key);
            match item {
                Item::Value(v) => self.value(base, key, v, path)?,
                Item::Table(t) => {
                    let sub = self.sub_table(base, key, &here)?;
                    self.table(sub, t, &here)?;
                }
                Item::ArrayOfTables(a) => self.array(base, key, a, &here)?,
                Item::None => {}
            }
        }
        Ok(())
    }

    /// The base's table `key` (standard, inline or dotted), created when absent.
    fn sub_table<'b>(
        &mut self,
        base: &'b mut dyn TableLike,
        key: &str,
        here: &str,
    ) -> Result<&'b mut dyn TableLike, MergeError> {
        if base.get(key).is_none() {
            let mut t = Table::new();
            t.set_implicit(true);
            base.insert(key, Item::Table(t));
        }
        let item = base.get_mut(key).expect("present");
        let found = ItemKind::of(item);
        item.as_table_like_mut().ok_or(MergeError::Shape {
            path: here.to_string(),
            found,
            expected: ItemKind::Table,
        })
    }

    fn value(
        &mut self,
        base: &mut dyn TableLike,
        key: &str,
        new: &Value,
        path: &str,
    ) -> Result<(), MergeError> {
        let here = join(path, key);
        match base.get_mut(key) {
            None => {
                let mut v = new.clone();
                v.decor_mut().clear();
                base.insert(key, Item::Value(v));
                self.out.changed.push(here);
            }
            Some(Item::Value(old)) => {
                if same(old, new) {
                    return Ok(());
                }
                if self.rules.keep.is_some_and(|keep| keep(path, key, old)) {
                    self.out.kept.push(here);
                    return Ok(());
                }
                let decor = old.decor().clone();
                *old = new.clone();
                *old.decor_mut() = decor;
                self.out.changed.push(here);
            }
            Some(other) => {
                return Err(MergeError::Shape {
                    path: here,
                    found: ItemKind::of(other),
                    expected: ItemKind::Value,
                })
            }
        }
        Ok(())
    }

    fn rule(&self, here: &str) -> ArrayRule {
        self.rules
            .arrays
            .iter()
            .find(|r| r.path == here)
            .copied()
            .unwrap_or(ArrayRule {
                path: "",
                key: None,
                keep_others: false,
            })
    }

    fn array(
        &mut self,
        base: &mut dyn TableLike,
        key: &str,
        patch: &ArrayOfTables,
        here: &str,
    ) -> Result<(), MergeError> {
        let rule = self.rule(here);
        let mut existing = match base.remove(key) {
            None => ArrayOfTables::new(),
            Some(Item::ArrayOfTables(a)) => a,
            Some(Item::Value(Value::Array(a)))
                if a.iter().all(|v| matches!(v, Value::InlineTable(_))) =>
            {
                let mut out = ArrayOfTables::new();
                for v in a.iter() {
                    if let Value::InlineTable(t) = v {
                        out.push(t.clone().into_table());
                    }
                }
                self.out
                    .changed
                    .push(format!("{here} (inline array rewritten as [[{here}]])"));
                out
            }
            Some(other) => {
                let found = ItemKind::of(&other);
                base.insert(key, other);
                return Err(MergeError::Shape {
                    path: here.to_string(),
                    found,
                    expected: ItemKind::ArrayOfTables,
                });
            }
        };
        let result = self.array_entries(&mut existing, patch, rule, here);
        base.insert(key, Item::ArrayOfTables(existing));
        result
    }

    fn array_entries(
        &mut self,
        existing: &mut ArrayOfTables,
        patch: &ArrayOfTables,
        rule: ArrayRule,
        here: &str,
    ) -> Result<(), MergeError> {
        // An entry's identity: its key field's value, without whitespace or comment around it.
        let ident = |t: &Table| -> Option<String> {
            rule.key
                .and_then(|k| t.get(k))
                .and_then(Item::as_value)
                .map(|v| {
                    let mut v = v.clone();
                    v.decor_mut().clear();
                    v.to_string()
                })
        };
        let mut matched = vec![false; existing.len()];
        let mut appended = Vec::new();
        for (i, entry) in patch.iter().enumerate() {
            let found = match rule.key {
                Some(_) => {
                    let id = ident(entry);
                    (0..existing.len()).find(|&j| {
                        !matched[j] && id.is_some() && existing.get(j).and_then(ident) == id
                    })
                }
                None => (i < existing.len()).then_some(i),
            };
            match found {
                Some(j) => {
                    matched[j] = true;
                    let target = existing.get_mut(j).expect("index in range");
                    self.table(target, entry, &format!("{here}[{j}]"))?;
                }
                None => appended.push(entry),
            }
        }
        if !rule.keep_others {
            for j in (0..matched.len()).rev().filter(|&j| !matched[j]) {
                existing.remove(j);
                self.out.dropped.push(format!("{here}[{j}]"));
            }
        }
        for entry in appended {
            existing.push(detached(entry));
            self.out
                .changed
                .push(format!("{here}[{}]", existing.len() - 1));
        }
        Ok(())
    }
}

/// A line diff of `old` and `new` (`-` / `+` lines with two lines of context), empty when equal.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 3).min(ops.len());
        ops[lo..hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if near(k) {
            if skipped {
                out.push_str("@@\n");
                skipped = false;
            }
            out.push(*c);
            out.push_str(line);
            out.push('\n');
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            arrays: vec![
                ArrayRule {
                    path: "env",
                    key: Some("name"),
                    keep_others: false,
                },
                ArrayRule {
                    path: "listener",
                    key: Some("id"),
                    keep_others: true,
                },
            ],
            keep: Some(|path, _, v| path == "secrets" && !v.to_string().contains('[')),
            last: Some("secrets"),
        }
    }

    #[test]
    fn last_table_stays_last() {
        let base = "[server]\nhostname = \"a\"\n\n[secrets]\nx = \"[1]\"\n";
        let patch = "[apim.event_hub]\nenable = true\n\n[secrets]\ny = \"[2]\"\n";
        let m = merge(base, patch, &rules()).expect("merged");
        assert_eq!(
            m.text,
            "[server]\nhostname = \"a\"\n\n[apim.event_hub]\nenable = true\n\n[secrets]\nx = \"[1]\"\ny = \"[2]\"\n"
        );
        assert_eq!(merge(&m.text, patch, &rules()).expect("m").text, m.text);
        // Comments after the last table move above [secrets].
        let base = "[server]\nhostname = \"a\"\n\n#[apim.event_hub]\n#enable = true";
        let m = merge(base, patch, &rules()).expect("merged");
        let tail = &m.text[m.text.find("#[apim").expect("comment kept")..];
        assert!(tail.contains("\n[secrets]\ny = \"[2]\"\n"), "{}", m.text);
        assert!(m.text.trim_end().ends_with("y = \"[2]\""), "{}", m.text);
        assert_eq!(merge(&m.text, patch, &rules()).expect("m").text, m.text);
    }

    const BASE: &str = "# Head comment\n\n[server]\nhostname = \"localhost\"   # the host\n#offset = 0\nbase_path = \"x\"\n\n# Operator's own table\n[database.shared_db]\nurl = \"jdbc:h2:./x\"\n\n[[env]]\nname = \"Default\"\nextra = true\nservice_url = \"https://localhost:9443/services/\"\n\n[[env]]\nname = \"Old\"\n\n[[listener]]\nid = \"a\"\nvalue = 1\n\n[[listener]]\nid = \"b\"\nvalue = 2\n";

    const PATCH: &str = "[server]\nhostname = \"gw.acme.internal\"\noffset = 2\n\n[apim.event_hub]\nenable = true\n\n[[env]]\nname = \"Default\"\nservice_url = \"https://gw:9443/services/\"\n\n[[listener]]\nid = \"b\"\nvalue = 3\n";

    #[test]
    fn keeps_comments_order_and_unowned_tables() {
        let m = merge(BASE, PATCH, &rules()).expect("merged");
        let t = &m.text;
        assert!(t.starts_with("# Head comment\n\n[server]\nhostname = \"gw.acme.internal\"   # the host\n#offset = 0\nbase_path = \"x\"\noffset = 2\n"), "{t}");
        assert!(
            t.contains("\n# Operator's own table\n[database.shared_db]\nurl = \"jdbc:h2:./x\"\n")
        );
        assert!(t.contains("[[env]]\nname = \"Default\"\nextra = true\nservice_url = \"https://gw:9443/services/\"\n"));
        assert!(!t.contains("\"Old\""), "owned array entry dropped");
        assert_eq!(m.dropped, ["env[1]"]);
        assert!(t.contains("id = \"a\"\nvalue = 1"), "unowned listener kept");
        assert!(t.contains("id = \"b\"\nvalue = 3"));
        assert!(t.contains("[apim.event_hub]\nenable = true\n"));
        assert!(!t.contains("[apim]\n"));
        toml::from_str::<toml::Table>(t).expect("valid");
        // Idempotent.
        let again = merge(t, PATCH, &rules()).expect("merged");
        assert_eq!(&again.text, t);
        assert!(again.changed.is_empty() && again.dropped.is_empty());
    }

    #[test]
    fn crlf_kept() {
        let base = BASE.replace('\n', "\r\n");
        let m = merge(&base, PATCH, &rules()).expect("merged");
        assert!(!m.text.replace("\r\n", "").contains('\n'), "only CRLF");
        assert!(m.text.contains("[apim.event_hub]\r\nenable = true\r\n"));
        assert_eq!(merge(&m.text, PATCH, &rules()).expect("m").text, m.text);
    }

    #[test]
    fn inline_and_dotted_forms_edited_in_place() {
        let base = "[server]\nhostname = \"a\"\n\n[keystore]\ntls = { file_name = \"x.jks\", alias = \"a\" }\nprimary.file_name = \"p.jks\"\nprimary.alias = \"p\"\n";
        let patch = "[keystore.tls]\nfile_name = \"gw1.p12\"\npassword = \"$secret{t}\"\n\n[keystore.primary]\nfile_name = \"wso2carbon.p12\"\ntype = \"PKCS12\"\n";
        let m = merge(base, patch, &Rules::default()).expect("merged");
        assert!(
            m.text
                .contains("tls = { file_name = \"gw1.p12\", alias = \"a\" ,"),
            "{}",
            m.text
        );
        assert!(m.text.contains("primary.file_name = \"wso2carbon.p12\"\nprimary.alias = \"p\"\nprimary.type = \"PKCS12\"\n"), "{}", m.text);
        assert!(!m.text.contains("[keystore.tls]") && !m.text.contains("[keystore.primary]"));
        let t: toml::Table = toml::from_str(&m.text).expect("valid");
        assert_eq!(t["keystore"]["tls"]["file_name"].as_str(), Some("gw1.p12"));
        // Root-level dotted keys too.
        let base = "keystore.tls.file_name = \"x\"\n";
        let m = merge(base, patch, &Rules::default()).expect("merged");
        assert!(
            m.text.contains("keystore.tls.file_name = \"gw1.p12\""),
            "{}",
            m.text
        );
        toml::from_str::<toml::Table>(&m.text).expect("valid");
    }

    #[test]
    fn array_entry_matched_despite_comment() {
        let base = "[[env]]\nname = \"Default\"   # ours\nextra = 1\n";
        let patch = "[[env]]\nname = \"Default\"\ny = 2\n";
        let m = merge(base, patch, &rules()).expect("merged");
        assert_eq!(
            m.text,
            "[[env]]\nname = \"Default\"   # ours\nextra = 1\ny = 2\n"
        );
    }

    #[test]
    fn inline_array_of_tables_rewritten_once() {
        let base = "env = [{ name = \"Default\", x = 1 }]\n";
        let patch = "[[env]]\nname = \"Default\"\ny = 2\n";
        let m = merge(base, patch, &rules()).expect("merged");
        let t: toml::Table = toml::from_str(&m.text).expect("valid");
        let env = t["env"].as_array().expect("array");
        assert_eq!(env.len(), 1);
        assert_eq!(env[0]["x"].as_integer(), Some(1));
        assert_eq!(env[0]["y"].as_integer(), Some(2));
    }

    #[test]
    fn encrypted_value_kept_plain_updated() {
        let base = "[secrets]\na = \"c2VjcmV0Y2lwaGVy\"\nb = \"[old]\"\n";
        let patch = "[secrets]\na = \"[new]\"\nb = \"[new]\"\nc = \"[new]\"\n";
        let m = merge(base, patch, &rules()).expect("merged");
        assert_eq!(
            m.text,
            "[secrets]\na = \"c2VjcmV0Y2lwaGVy\"\nb = \"[new]\"\nc = \"[new]\"\n"
        );
        assert_eq!(m.kept, ["secrets.a"]);
    }

    #[test]
    fn invalid_and_conflicting_input_refused() {
        let e = merge("[server]\nhostname = \n", PATCH, &rules()).unwrap_err();
        assert!(matches!(e, MergeError::Syntax { line: 2, .. }), "{e}");
        assert!(
            e.to_string().starts_with("not valid TOML (line 2, column "),
            "{e}"
        );
        let e = merge("[server]\na = 1\n[server]\nb = 2\n", PATCH, &rules()).unwrap_err();
        assert!(matches!(e, MergeError::Syntax { .. }), "{e}");
        let e = merge("server = \"x\"\n", PATCH, &rules()).unwrap_err();
        assert_eq!(
            e,
            MergeError::Shape {
                path: "server".into(),
                found: ItemKind::Value,
                expected: ItemKind::Table
            }
        );
        assert_eq!(
            e.to_string(),
            "`server` is a value here, where a table belongs"
        );
        let e = merge("[server.hostname]\na = 1\n", PATCH, &rules()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`server.hostname` is a table here, where a value belongs"
        );
        let e = merge("env = { a = 1 }\n", PATCH, &rules()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`env` is an inline table here, where an array of tables belongs"
        );
    }

    #[test]
    fn diff_shows_changes_only() {
        assert_eq!(diff("a\nb\n", "a\nb\n"), "");
        let d = diff("1\n2\n3\n4\n5\n6\n7\n", "1\n2\n3\nX\n5\n6\n7\n");
        assert_eq!(d, "@@\n 2\n 3\n-4\n+X\n 5\n 6\n");
    }
}
