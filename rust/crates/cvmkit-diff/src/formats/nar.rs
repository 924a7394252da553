//! Nix archives: `nix-archive-1`, then a node `( type regular|symlink|directory … )`, every
//! string a little-endian u64 length and the bytes padded with NULs to 8.

use std::io;

use crate::data::Data;
use crate::engine::{join, Cx, Engine, Item};
use crate::sniff::Format;

/// Longest token, name or symlink target read (file contents are not read, only located).
const MAX_STRING: u64 = 64 << 10;
/// Deepest directory nesting accepted.
const MAX_NESTING: usize = 256;

pub(crate) fn compare(e: &mut Engine<'_>, cx: &Cx<'_>) -> io::Result<bool> {
    let (ia, ib) = (items(cx.a)?, items(cx.b)?);
    let (ia, ib) = match (ia, ib) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => return Ok(e.parse_failed(cx.path, Format::Nar, x.err(), y.err())),
    };
    e.items(&join(cx.path, "nar"), ia, ib, true, None, cx.depth)?;
    Ok(true)
}

struct Cursor<'a> {
    d: &'a Data,
    pos: u64,
}

type Parse<T> = io::Result<Result<T, String>>;

impl Cursor<'_> {
    fn u64(&mut self) -> Parse<u64> {
        let mut b = [0u8; 8];
        if self.d.read_at(self.pos, &mut b)? != 8 {
            return Ok(Err(format!("truncated at offset {}", self.pos)));
        }
        self.pos += 8;
        Ok(Ok(u64::from_le_bytes(b)))
    }

    /// Length and offset of the next string, skipping it and its padding.
    fn skip_string(&mut self) -> Parse<(u64, u64)> {
        let at = self.pos;
        let len = match self.u64()? {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        let padded = len.checked_add(7).map(|l| l & !7);
        match padded.and_then(|p| self.pos.checked_add(p)) {
            Some(end) if end <= self.d.len() => {
                let start = self.pos;
                self.pos = end;
                Ok(Ok((start, len)))
            }
            _ => Ok(Err(format!(
                "string at offset {at} claims {len} bytes, past the end of the archive"
            ))),
        }
    }

    fn string(&mut self) -> Parse<Vec<u8>> {
        let at = self.pos;
        let (start, len) = match self.skip_string()? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if len > MAX_STRING {
            return Ok(Err(format!("string at offset {at} is {len} bytes long")));
        }
        let mut v = vec![0u8; len as usize];
        self.d.read_at(start, &mut v)?;
        Ok(Ok(v))
    }

    fn expect(&mut self, token: &str) -> Parse<()> {
        let at = self.pos;
        Ok(match self.string()? {
            Ok(s) if s == token.as_bytes() => Ok(()),
            Ok(s) => Err(format!(
                "expected '{token}' at offset {at}, found '{}'",
                s.escape_ascii()
            )),
            Err(e) => Err(e),
        })
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

pub(crate) fn items(d: &Data) -> Parse<Vec<Item>> {
    let mut c = Cursor { d, pos: 0 };
    tri!(c.expect("nix-archive-1"));
    let mut out = Vec::new();
    tri!(node(&mut c, String::new(), 0, &mut out));
    if c.pos != d.len() {
        return Ok(Err(format!("{} bytes of trailing data", d.len() - c.pos)));
    }
    Ok(Ok(out))
}

fn node(c: &mut Cursor<'_>, path: String, nesting: usize, out: &mut Vec<Item>) -> Parse<()> {
    if nesting > MAX_NESTING {
        return Ok(Err(format!("directories nested deeper than {MAX_NESTING}")));
    }
    let key = if path.is_empty() {
        "(root)".to_string()
    } else {
        path.clone()
    };
    tri!(c.expect("("));
    tri!(c.expect("type"));
    let ty = tri!(c.string());
    match &ty[..] {
        b"regular" => {
            let mut token = tri!(c.string());
            let mut exec = false;
            if token == b"executable" {
                tri!(c.expect(""));
                exec = true;
                token = tri!(c.string());
            }
            if token != b"contents" {
                return Ok(Err(format!("expected 'contents' before offset {}", c.pos)));
            }
            let (start, len) = tri!(c.skip_string());
            out.push(
                Item::new(key, "file")
                    .field("executable", exec)
                    .data(c.d.slice(start, len), None),
            );
            tri!(c.expect(")"));
        }
        b"symlink" => {
            tri!(c.expect("target"));
            let target = tri!(c.string());
            out.push(
                Item::new(key, "symlink").field("symlink target", String::from_utf8_lossy(&target)),
            );
            tri!(c.expect(")"));
        }
        b"directory" => {
            out.push(Item::new(key, "directory"));
            loop {
                let token = tri!(c.string());
                match &token[..] {
                    b")" => break,
                    b"entry" => {
                        tri!(c.expect("("));
                        tri!(c.expect("name"));
                        let name = tri!(c.string());
                        let name = String::from_utf8_lossy(&name);
                        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                            return Ok(Err(format!("invalid entry name '{name}'")));
                        }
                        tri!(c.expect("node"));
                        let child = if path.is_empty() {
                            name.into_owned()
                        } else {
                            format!("{path}/{name}")
                        };
                        tri!(node(c, child, nesting + 1, out));
                        tri!(c.expect(")"));
                    }
                    other => {
                        return Ok(Err(format!(
                            "expected 'entry' or ')' before offset {}, found '{}'",
                            c.pos,
                            other.escape_ascii()
                        )))
                    }
                }
            }
        }
        other => return Ok(Err(format!("unknown node type '{}'", other.escape_ascii()))),
    }
    Ok(Ok(()))
}
