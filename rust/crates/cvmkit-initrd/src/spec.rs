//! Parser for the kernel's `gen_init_cpio` file list format.

use std::path::{Path, PathBuf};

use crate::{normalize_name, Error, MAX_SYMLINK_TARGET};

/// Largest device major number the kernel's `MKDEV` keeps (12 bits).
const MAX_MAJOR: u32 = (1 << 12) - 1;
/// Largest device minor number the kernel's `MKDEV` keeps (20 bits).
const MAX_MINOR: u32 = (1 << 20) - 1;

/// A list of entries in the format of the Linux kernel's `usr/gen_init_cpio`
/// (see `Documentation/driver-api/early-userspace/early_userspace_support.rst`):
///
/// ```text
/// # a comment
/// file <name> <location> <mode> <uid> <gid> [<hard links>]
/// dir <name> <mode> <uid> <gid>
/// nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>
/// slink <name> <target> <mode> <uid> <gid>
/// pipe <name> <mode> <uid> <gid>
/// sock <name> <mode> <uid> <gid>
/// ```
///
/// Fields are separated by spaces or tabs. `<mode>` is octal permission bits (at
/// most `07777`; the type comes from the keyword), `<uid>`, `<gid>`, `<maj>` and
/// `<min>` are decimal, `<dev_type>` is `b` (block) or `c` (character). A
/// `<location>` is a file on the build machine, relative to the directory of the
/// spec file unless absolute; it is read when the archive is written. Names may
/// start with `/`; they are stored relative (`/dev/console` becomes
/// `dev/console`), and `.` components and repeated slashes are dropped.
///
/// Differences from `gen_init_cpio`, all of them stricter: `#` may be indented
/// but must start the line; extra fields are an error (except hard link names
/// after `file`); `${VAR}` in a location is not expanded, since the environment
/// must not change the output; names containing `..` are refused.
///
/// How the entries combine with a directory tree is described at
/// [`Initrd::apply_spec`](crate::Initrd::apply_spec).
///
/// ```
/// use cvmkit_initrd::{Spec, SpecKind};
/// use std::path::Path;
///
/// let spec = Spec::parse(
///     "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n",
///     Path::new("initrd.list"),
/// )?;
/// assert_eq!(spec.entries()[1].name, "dev/console");
/// assert_eq!(spec.entries()[1].kind, SpecKind::Nod { block: false, major: 5, minor: 1 });
///
/// let err = Spec::parse("nod /dev/x 0600 0 0 x 1 2", Path::new("spec.txt")).unwrap_err();
/// assert_eq!(err.to_string(), "spec.txt:1: nod needs <dev_type> b or c, got 'x'");
/// # Ok::<(), cvmkit_initrd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    path: PathBuf,
    entries: Vec<SpecEntry>,
}

/// One line of a [`Spec`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpecEntry {
    /// 1-based line number in the spec file.
    pub line: usize,
    /// Name in the archive, normalized: relative, no `.` or empty components.
    pub name: String,
    /// What the entry is.
    pub kind: SpecKind,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
}

/// The type-specific fields of a [`SpecEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecKind {
    /// `file`: contents read from `location`, plus further names that are hard
    /// links to it (normalized like `name`).
    File {
        /// Source file, already joined to the spec file's directory.
        location: PathBuf,
        /// Additional names for the same file.
        links: Vec<String>,
    },
    /// `dir`.
    Dir,
    /// `nod`: a block (`b`) or character (`c`) device.
    Nod {
        /// `true` for a block device.
        block: bool,
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// `slink`: a symbolic link to `target`, stored verbatim.
    Slink {
        /// Link target.
        target: String,
    },
    /// `pipe`: a named pipe.
    Pipe,
    /// `sock`: a socket.
    Sock,
}

impl Spec {
    /// Parses spec text. `spec_path` is where the text came from: it names the
    /// file in error messages (`spec.txt:12: ...`) and its directory is the base
    /// for relative `<location>`s. The file system is not touched.
    pub fn parse(text: &str, spec_path: &Path) -> Result<Spec, Error> {
        let base = spec_path.parent().unwrap_or(Path::new(""));
        let mut entries = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |message: String| Error::Spec {
                file: spec_path.to_path_buf(),
                line,
                message,
            };
            let fields: Vec<&str> = raw.split_ascii_whitespace().collect();
            let Some((&keyword, args)) = fields.split_first() else {
                continue; // blank line
            };
            if keyword.starts_with('#') {
                continue;
            }
            entries.push(parse_line(keyword, args, base, line).map_err(err)?);
        }
        Ok(Spec {
            path: spec_path.to_path_buf(),
            entries,
        })
    }

    /// Reads and parses the spec file at `path`.
    pub fn from_file(path: &Path) -> Result<Spec, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.display().to_string(),
            error,
        })?;
        Spec::parse(&text, path)
    }

    /// The path given to [`Spec::parse`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[SpecEntry] {
        &self.entries
    }
}

/// Field names of each keyword, for arity errors.
fn usage(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "file" => "<name> <location> <mode> <uid> <gid> [<hard links>]",
        "dir" | "pipe" | "sock" => "<name> <mode> <uid> <gid>",
        "nod" => "<name> <mode> <uid> <gid> <dev_type> <maj> <min>",
        "slink" => "<name> <target> <mode> <uid> <gid>",
        _ => return None,
    })
}

fn parse_line(keyword: &str, args: &[&str], base: &Path, line: usize) -> Result<SpecEntry, String> {
    let Some(fields) = usage(keyword) else {
        return Err(format!(
            "unknown entry type '{keyword}'; expected one of file, dir, nod, slink, pipe, sock (comments start with '#')"
        ));
    };
    let want = fields.split(' ').filter(|f| f.starts_with('<')).count();
    let arity_ok = if keyword == "file" {
        args.len() >= want
    } else {
        args.len() == want
    };
    if !arity_ok {
        let at_least = if keyword == "file" { "at least " } else { "" };
        return Err(format!(
            "{keyword} needs {at_least}{want} fields {fields}, got {}: '{}'",
            args.len(),
            args.join(" ")
        ));
    }
    let arg = |i: usize| args.get(i).copied().unwrap_or_default();
    let name = spec_name(keyword, "<name>", arg(0))?;
    let (kind, rest) = match keyword {
        "file" => {
            let links = args
                .get(5..)
                .unwrap_or_default()
                .iter()
                .map(|l| spec_name(keyword, "<hard links>", l))
                .collect::<Result<Vec<_>, _>>()?;
            let location = base.join(arg(1));
            (SpecKind::File { location, links }, 2)
        }
        "slink" => {
            let target = arg(1);
            if target.len() > MAX_SYMLINK_TARGET {
                return Err(format!(
                    "slink <target> is {} bytes; Linux symlink targets hold at most {MAX_SYMLINK_TARGET}",
                    target.len()
                ));
            }
            (
                SpecKind::Slink {
                    target: target.to_string(),
                },
                2,
            )
        }
        "nod" => {
            let block = match arg(4) {
                "b" => true,
                "c" => false,
                other => return Err(format!("nod needs <dev_type> b or c, got '{other}'")),
            };
            let major = decimal(keyword, "<maj>", arg(5), MAX_MAJOR)?;
            let minor = decimal(keyword, "<min>", arg(6), MAX_MINOR)?;
            (
                SpecKind::Nod {
                    block,
                    major,
                    minor,
                },
                1,
            )
        }
        "dir" => (SpecKind::Dir, 1),
        "pipe" => (SpecKind::Pipe, 1),
        _ => (SpecKind::Sock, 1),
    };
    let mode = octal(keyword, arg(rest))?;
    let uid = decimal(keyword, "<uid>", arg(rest + 1), u32::MAX)?;
    let gid = decimal(keyword, "<gid>", arg(rest + 2), u32::MAX)?;
    Ok(SpecEntry {
        line,
        name,
        kind,
        mode,
        uid,
        gid,
    })
}

fn spec_name(keyword: &str, field: &str, raw: &str) -> Result<String, String> {
    normalize_name(raw.as_bytes())
        .map_err(|why| format!("{keyword} {field} '{raw}' {why}"))
        .map(|n| String::from_utf8_lossy(&n).into_owned())
}

fn octal(keyword: &str, raw: &str) -> Result<u32, String> {
    let parsed = if !raw.is_empty() && raw.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        u32::from_str_radix(raw, 8).ok()
    } else {
        None
    };
    match parsed {
        Some(mode) if mode <= 0o7777 => Ok(mode),
        Some(_) => Err(format!(
            "{keyword} <mode> '{raw}' is larger than 07777; give only the permission bits (the keyword sets the type)"
        )),
        None => Err(format!("{keyword} <mode> must be octal like 0755, got '{raw}'")),
    }
}

fn decimal(keyword: &str, field: &str, raw: &str, max: u32) -> Result<u32, String> {
    let parsed = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u32>().ok()
    } else {
        None
    };
    match parsed {
        Some(v) if v <= max => Ok(v),
        _ => Err(format!(
            "{keyword} {field} must be a decimal number from 0 to {max}, got '{raw}'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Spec::parse(text, Path::new("spec.txt"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_every_keyword() {
        // The example from the usage text of the kernel's usr/gen_init_cpio.c,
        // plus the keywords it does not show.
        let text = "\
# A simple initramfs
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /root 0700 0 0
dir /sbin 0755 0 0
file /sbin/kinit kinit/kinit 0755 0 0

\tslink /init /sbin/kinit 0777 0 0
pipe /run/fifo 0620 1 2
sock //run/./sock 0600 3 4
nod /dev/vda 0660 0 6 b 254 0
file /bin/a ../a 0644 0 0 /bin/b bin/c
";
        let spec = Spec::parse(text, Path::new("conf/initrd.list")).unwrap();
        let e = spec.entries();
        assert_eq!(e.len(), 10);
        assert_eq!(
            (e[0].line, e[0].name.as_str(), e[0].mode),
            (2, "dev", 0o755)
        );
        assert_eq!(
            e[1].kind,
            SpecKind::Nod {
                block: false,
                major: 5,
                minor: 1
            }
        );
        assert_eq!(e[2].mode, 0o700);
        assert_eq!(
            e[4].kind,
            SpecKind::File {
                location: PathBuf::from("conf/kinit/kinit"),
                links: vec![]
            }
        );
        assert_eq!(e[5].line, 8);
        assert_eq!(e[5].name, "init");
        assert_eq!(
            e[5].kind,
            SpecKind::Slink {
                target: "/sbin/kinit".into()
            }
        );
        assert_eq!(
            (e[6].kind.clone(), e[6].uid, e[6].gid),
            (SpecKind::Pipe, 1, 2)
        );
        assert_eq!(
            (e[7].name.as_str(), e[7].kind.clone()),
            ("run/sock", SpecKind::Sock)
        );
        assert_eq!(
            e[8].kind,
            SpecKind::Nod {
                block: true,
                major: 254,
                minor: 0
            }
        );
        assert_eq!(
            e[9].kind,
            SpecKind::File {
                location: PathBuf::from("conf/../a"),
                links: vec!["bin/b".into(), "bin/c".into()]
            }
        );
    }

    #[test]
    fn absolute_locations_are_kept() {
        let spec = Spec::parse("file /x /abs/x 0644 0 0", Path::new("d/s")).unwrap();
        assert!(
            matches!(&spec.entries()[0].kind, SpecKind::File { location, .. } if location == Path::new("/abs/x"))
        );
    }

    #[test]
    fn errors_name_file_line_and_bad_value() {
        assert_eq!(
            err("dir /a 0755 0 0\n\n# c\nnod /dev/x 0600 0 0 x 1 2\n"),
            "spec.txt:4: nod needs <dev_type> b or c, got 'x'"
        );
        assert_eq!(
            err("fil /a b 0644 0 0"),
            "spec.txt:1: unknown entry type 'fil'; expected one of file, dir, nod, slink, pipe, sock (comments start with '#')"
        );
        assert_eq!(
            err("dir /a 0755 0"),
            "spec.txt:1: dir needs 4 fields <name> <mode> <uid> <gid>, got 3: '/a 0755 0'"
        );
        assert_eq!(
            err("dir /a 0755 0 0 # trailing comment"),
            "spec.txt:1: dir needs 4 fields <name> <mode> <uid> <gid>, got 7: '/a 0755 0 0 # trailing comment'"
        );
        assert_eq!(
            err("\n\ndir /a 0985 0 0"),
            "spec.txt:3: dir <mode> must be octal like 0755, got '0985'"
        );
        assert_eq!(
            err("dir /a 0100755 0 0"),
            "spec.txt:1: dir <mode> '0100755' is larger than 07777; give only the permission bits (the keyword sets the type)"
        );
        assert_eq!(
            err("pipe /a 0644 -1 0"),
            "spec.txt:1: pipe <uid> must be a decimal number from 0 to 4294967295, got '-1'"
        );
        assert_eq!(
            err("nod /dev/x 0600 0 0 c 4096 0"),
            "spec.txt:1: nod <maj> must be a decimal number from 0 to 4095, got '4096'"
        );
        assert_eq!(
            err("slink /a/../../etc x 0777 0 0"),
            "spec.txt:1: slink <name> '/a/../../etc' contains a '..' component, which could point outside the image"
        );
        assert_eq!(
            err("dir / 0755 0 0"),
            "spec.txt:1: dir <name> '/' names the image root, which has no entry in the archive"
        );
        assert_eq!(
            err("file /a a 0644 0 0 ../b"),
            "spec.txt:1: file <hard links> '../b' contains a '..' component, which could point outside the image"
        );
        // Found by fuzz/parse_spec: this name used to pass the spec and fail only when the
        // archive was written, without a line number.
        assert_eq!(
            err("dir /dev 0755 0 0\nnod /TRAILER!!! 0600 0 6 b 8 0"),
            "spec.txt:2: nod <name> '/TRAILER!!!' starts with TRAILER!!!, the name that ends a cpio archive: the kernel would stop unpacking at that entry or its parent directory"
        );
        assert!(err("sock /TRAILER!!!/x 0644 0 0")
            .starts_with("spec.txt:1: sock <name> '/TRAILER!!!/x' starts with TRAILER!!!"));
    }
}
