//! File names as bytes, and their printable form.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::Path;

/// The bytes of a file name. On Unix these are exactly the kernel's bytes; elsewhere (not a
/// target of cvmkit, but the crate should still build) a lossy UTF-8 rendering.
#[cfg(unix)]
pub(crate) fn bytes(s: &OsStr) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(s.as_bytes())
}

#[cfg(not(unix))]
pub(crate) fn bytes(s: &OsStr) -> Cow<'_, [u8]> {
    Cow::Owned(s.to_string_lossy().into_owned().into_bytes())
}

/// Appends `name` to `out` in the report's escaped form: valid UTF-8 as is, except `\` as `\\`
/// and control characters as `\xNN`; each byte that is not valid UTF-8 as `\xNN`. The form is
/// reversible and always valid UTF-8 on one line, so JSON and terminal output both hold every
/// name exactly.
pub(crate) fn escape_into(out: &mut String, mut name: &[u8]) {
    let push_str = |out: &mut String, s: &str| {
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c => out.push(c),
            }
        }
    };
    while !name.is_empty() {
        match std::str::from_utf8(name) {
            Ok(s) => {
                push_str(out, s);
                break;
            }
            Err(e) => {
                let (good, rest) = name.split_at(e.valid_up_to());
                push_str(out, &String::from_utf8_lossy(good));
                let bad = e.error_len().unwrap_or(rest.len());
                for b in &rest[..bad] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                name = &rest[bad..];
            }
        }
    }
}

/// `rel` (relative to the root, no leading `/`) as the report shows it: `/usr/share/doc`.
pub(crate) fn display(rel: &Path) -> String {
    let mut out = String::new();
    for c in rel.components() {
        out.push('/');
        escape_into(&mut out, &bytes(c.as_os_str()));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A symlink's target as the report shows it (escaped the same way, `/` kept).
pub(crate) fn display_target(target: &Path) -> String {
    let mut out = String::new();
    escape_into(&mut out, &bytes(target.as_os_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_into(&mut s, b"a\\b\nc\xffd\xc3\xa9\x7f");
        assert_eq!(s, "a\\\\b\\x0ac\\xffdé\\x7f");
        assert_eq!(display(Path::new("usr/share")), "/usr/share");
        assert_eq!(display(Path::new("")), "/");
    }
}
