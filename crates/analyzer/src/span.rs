//! Where things are in a policy document: a second, separate pass over the
//! text (only ValidatePolicy runs it; the policy engine's parser on the
//! request path keeps no offsets) that records the byte span of every
//! value and object key, and turns byte offsets into Access Analyzer's
//! positions (line from 1, column and offset from 0, in characters).

use serde::Serialize;

/// One element of a path through the document, as the service model's
/// `PathElement` union has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PathElement {
    /// An index in an array.
    Index(usize),
    /// An object's key itself.
    Key(String),
    /// The value of an object's key.
    Value(String),
}

/// A position, as the service model's `Position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 0, in characters.
    pub column: usize,
    /// The offset in the document, from 0, in characters.
    pub offset: usize,
}

/// A span: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Where it starts.
    pub start: Position,
    /// Where it ends (exclusive).
    pub end: Position,
}

/// A JSON value with its byte span.
#[derive(Debug, Clone)]
pub struct Node {
    /// Byte offset of the value's first byte.
    pub start: usize,
    /// Byte offset just past the value.
    pub end: usize,
    /// What it is.
    pub kind: NodeKind,
}

/// The value of a [`Node`].
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// An object: its entries in document order, each with its key's span.
    Object(Vec<Entry>),
    /// An array.
    Array(Vec<Node>),
    /// A string, decoded.
    Str(String),
    /// A number, `true`, `false` or `null`.
    Other,
}

/// One entry of an object.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key, decoded.
    pub key: String,
    /// The key's byte span (quotes included).
    pub key_start: usize,
    /// End of the key's span.
    pub key_end: usize,
    /// The value.
    pub value: Node,
}

/// Deepest nesting read (the policy engine refuses deeper documents first).
const MAX_DEPTH: usize = 64;

impl Node {
    /// Reads a JSON document; `None` if it is not JSON (the policy engine
    /// reports where) or nests deeper than 64 levels.
    pub fn parse(text: &str) -> Option<Node> {
        let mut r = Reader {
            b: text.as_bytes(),
            text,
            i: 0,
        };
        let n = r.value(0)?;
        r.ws();
        (r.i == r.b.len()).then_some(n)
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Object(es) => es.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The entry of `key` in an object.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            NodeKind::Object(es) => es.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A string or the strings of an array, each with its path element
    /// (`None` for a lone string), as policy elements allow either.
    pub fn strings(&self) -> Vec<(Option<usize>, &Node)> {
        match &self.kind {
            NodeKind::Str(_) => vec![(None, self)],
            NodeKind::Array(items) => items
                .iter()
                .enumerate()
                .filter(|(_, n)| matches!(n.kind, NodeKind::Str(_)))
                .map(|(i, n)| (Some(i), n))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The byte span at the end of `path` (a `Key` element gives the key's
    /// own span); `None` if the document has no such element.
    pub fn locate(&self, path: &[PathElement]) -> Option<(usize, usize)> {
        let mut node = self;
        for (i, el) in path.iter().enumerate() {
            match el {
                PathElement::Index(n) => match &node.kind {
                    NodeKind::Array(items) => node = items.get(*n)?,
                    _ => return None,
                },
                PathElement::Value(k) => node = node.get(k)?,
                PathElement::Key(k) => {
                    let e = node.entry(k)?;
                    return (i + 1 == path.len()).then_some((e.key_start, e.key_end));
                }
            }
        }
        Some((node.start, node.end))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let start = self.i;
        let kind = match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        let key = self.string()?;
                        let key_end = self.i;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return None;
                        }
                        self.i += 1;
                        let value = self.value(depth + 1)?;
                        entries.push(Entry {
                            key,
                            key_start,
                            key_end,
                            value,
                        });
                        self.ws();
                        match self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                NodeKind::Object(entries)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                NodeKind::Array(items)
            }
            b'"' => NodeKind::Str(self.string()?),
            _ => {
                while self.b.get(self.i).is_some_and(|c| {
                    !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.i += 1;
                }
                let lit = &self.text[start..self.i];
                serde_json::from_str::<serde_json::Value>(lit).ok()?;
                NodeKind::Other
            }
        };
        Some(Node {
            start,
            end: self.i,
            kind,
        })
    }

    /// A string literal at `i`, decoded.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        loop {
            match *self.b.get(self.i)? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        serde_json::from_str(self.text.get(start..self.i)?).ok()
    }
}

/// Turns byte offsets of one document into positions.
pub struct Positions<'a> {
    text: &'a str,
}

impl<'a> Positions<'a> {
    /// For `text`.
    pub fn new(text: &'a str) -> Self {
        Positions { text }
    }

    /// The position of byte offset `at` (clamped to the text, and to a
    /// character boundary).
    pub fn at(&self, at: usize) -> Position {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count(),
            offset: before.chars().count(),
        }
    }

    /// The byte offset of a line (from 1) and a column (from 1, in
    /// characters), as JSON readers report faults.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut start = 0;
        for _ in 1..line {
            match self.text[start..].find('\n') {
                Some(i) => start += i + 1,
                None => return self.text.len(),
            }
        }
        self.text[start..]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// The span of bytes `start..end`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        Span {
            start: self.at(start),
            end: self.at(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_values_and_keys_in_characters() {
        let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"é\", \"Action\": [\"kms:A\", \"kms:B\"]}]\n}";
        let root = Node::parse(text).unwrap();
        let p = Positions::new(text);
        let path = [
            PathElement::Value("Statement".into()),
            PathElement::Index(0),
            PathElement::Value("Action".into()),
            PathElement::Index(1),
        ];
        let (s, e) = root.locate(&path).unwrap();
        assert_eq!(&text[s..e], "\"kms:B\"");
        let span = p.span(s, e);
        assert_eq!(span.start.line, 3);
        // The é before it is one character, two bytes.
        assert_eq!(span.start.offset, text[..s].chars().count());
        assert_eq!(span.start.offset + 1, s);
        assert_eq!(span.end.column - span.start.column, 7);
        let (s, e) = root.locate(&[PathElement::Key("Version".into())]).unwrap();
        assert_eq!(&text[s..e], "\"Version\"");
        assert_eq!(
            p.at(s),
            Position {
                line: 2,
                column: 2,
                offset: 4
            }
        );
        assert!(root.locate(&[PathElement::Value("Nope".into())]).is_none());
        assert!(root
            .locate(&[PathElement::Key("Version".into()), PathElement::Index(0)])
            .is_none());
    }

    #[test]
    fn line_and_column_to_offsets_and_bad_json() {
        let text = "{\n\"a\": x}";
        let p = Positions::new(text);
        assert_eq!(p.offset_of(2, 6), 7);
        assert_eq!(p.offset_of(9, 1), text.len());
        assert!(Node::parse(text).is_none());
        assert!(Node::parse("{\"a\": 1} x").is_none());
        assert!(Node::parse(&"[".repeat(100)).is_none());
        let deep = format!("{}{}", "[".repeat(60), "]".repeat(60));
        assert!(Node::parse(&deep).is_some());
    }
}
