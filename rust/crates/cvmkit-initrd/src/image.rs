//! The list of entries that becomes an archive, and how it is filled and written.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cvmkit_cpio::{mode, Header, Writer, MAX_FILE_SIZE};

use crate::{normalize_name, Error, Options, Spec, SpecKind, MAX_SYMLINK_TARGET};

/// How many symlinks one resolution may follow, as the kernel's `MAXSYMLINKS`.
const MAX_SYMLINK_FOLLOWS: u32 = 40;

/// The entries of an initrd, keyed by their name in the archive and kept in
/// bytewise order, which is the order they are written in.
///
/// ```
/// use cvmkit_initrd::{Initrd, Kind, Node, Options};
///
/// let mut initrd = Initrd::new();
/// initrd.insert("etc/hostname", Node::file_bytes(b"cvm\n".to_vec(), 0o644))?;
/// // The missing parent was created as a root-owned 0755 directory.
/// assert_eq!(initrd.get("etc").map(|n| &n.kind), Some(&Kind::Dir));
///
/// let mut cpio = Vec::new();
/// let len = initrd.write_cpio(&Options::default(), &mut cpio)?;
/// assert_eq!(len, cpio.len() as u64);
/// assert_eq!(len, initrd.cpio_size());
/// # Ok::<(), cvmkit_initrd::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Initrd {
    nodes: BTreeMap<Vec<u8>, Node>,
    next_group: u64,
}

/// One entry: what it is, its permissions and owner, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Type and type-specific data.
    pub kind: Kind,
    /// Permission bits (`0o7777` at most; higher bits are ignored).
    pub perm: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Where the entry came from, for error messages.
    pub origin: Origin,
}

/// The type of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Where the contents come from.
        source: FileSource,
        /// Files with the same group are hard links to one inode; they must
        /// have the same contents. Get a fresh group from [`Initrd::new_link_group`].
        link_group: Option<u64>,
    },
    /// A symbolic link; the target is stored verbatim.
    Symlink {
        /// The link target.
        target: Vec<u8>,
    },
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
}

/// Contents of a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A file on disk, read when the archive is written. `size` is its size when
    /// it was listed; the build fails if the file no longer has that size.
    Disk {
        /// The file (symlinks are followed when it is opened).
        path: PathBuf,
        /// Its expected size.
        size: u64,
    },
    /// Contents held in memory.
    Bytes(Vec<u8>),
}

impl FileSource {
    /// Size of the contents.
    pub fn len(&self) -> u64 {
        match self {
            FileSource::Disk { size, .. } => *size,
            FileSource::Bytes(b) => b.len() as u64,
        }
    }

    /// Whether the contents are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a [`Node`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Found at this path while walking a tree.
    Tree(PathBuf),
    /// From this line of a spec file (also for parents it created).
    Spec {
        /// The spec file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// Added through [`Initrd::insert`].
    Api,
}

impl Node {
    /// A root-owned directory.
    pub fn dir(perm: u32) -> Node {
        Node::new(Kind::Dir, perm)
    }

    /// A root-owned regular file with the given contents.
    pub fn file_bytes(contents: Vec<u8>, perm: u32) -> Node {
        let source = FileSource::Bytes(contents);
        Node::new(
            Kind::File {
                source,
                link_group: None,
            },
            perm,
        )
    }

    /// A root-owned symlink with permissions `0777`.
    pub fn symlink(target: impl Into<Vec<u8>>) -> Node {
        Node::new(
            Kind::Symlink {
                target: target.into(),
            },
            0o777,
        )
    }

    /// A root-owned node of any kind.
    pub fn new(kind: Kind, perm: u32) -> Node {
        Node {
            kind,
            perm,
            uid: 0,
            gid: 0,
            origin: Origin::Api,
        }
    }

    fn type_bits(&self) -> u32 {
        match self.kind {
            Kind::Dir => mode::S_IFDIR,
            Kind::File { .. } => mode::S_IFREG,
            Kind::Symlink { .. } => mode::S_IFLNK,
            Kind::CharDevice { .. } => mode::S_IFCHR,
            Kind::BlockDevice { .. } => mode::S_IFBLK,
            Kind::Fifo => mode::S_IFIFO,
            Kind::Socket => mode::S_IFSOCK,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File { .. } => "regular file",
            Kind::Symlink { .. } => "symlink",
            Kind::CharDevice { .. } => "character device",
            Kind::BlockDevice { .. } => "block device",
            Kind::Fifo => "named pipe",
            Kind::Socket => "socket",
        }
    }
}

/// How an entry is named in messages: its on-disk path when it came from a
/// tree, else its archive name (and spec line).
fn describe(name: &[u8], origin: &Origin) -> String {
    match origin {
        Origin::Tree(path) => path.display().to_string(),
        Origin::Spec { file, line } => {
            format!("/{} ({}:{line})", name.escape_ascii(), file.display())
        }
        Origin::Api => format!("/{}", name.escape_ascii()),
    }
}

/// glibc's `gnu_dev_major`/`gnu_dev_minor`: Linux splits a 64-bit `dev_t` into
/// a 32-bit major and a 32-bit minor, each in two pieces.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// The permission bits stored for an entry found on disk.
fn tree_perm(kind: &Kind, disk_mode: u32, preserve: bool) -> u32 {
    if preserve {
        return disk_mode & mode::PERMISSION_BITS;
    }
    match kind {
        // Like the Nix store: only "executable or not" survives.
        Kind::File { .. } if disk_mode & 0o100 != 0 => 0o755,
        Kind::File { .. } => 0o644,
        Kind::Dir => 0o755,
        Kind::Symlink { .. } => 0o777,
        // No default fits every device; keep rwx, drop setuid/setgid/sticky.
        _ => disk_mode & 0o777,
    }
}

/// Per-entry values that depend on the whole list.
struct Planned {
    ino: u32,
    nlink: u32,
    /// Bytes of data stored with this entry (0 for all but the last hard link).
    filesize: u64,
}

impl Initrd {
    /// An empty initrd.
    pub fn new() -> Initrd {
        Initrd::default()
    }

    /// Lists the tree under `root` (see [`Initrd::add_tree`]).
    pub fn from_tree(root: &Path, opts: &Options) -> Result<Initrd, Error> {
        let mut initrd = Initrd::new();
        initrd.add_tree(root, opts)?;
        Ok(initrd)
    }

    /// Adds everything under `root` (not `root` itself), named relative to it.
    ///
    /// Each entry is examined once (`lstat`, never following symlinks); file
    /// contents are read only by [`Initrd::write_cpio`]. Regular files that share
    /// a device and inode are hard links. An entry with the name of an existing
    /// one replaces it. Modes follow [`Options::preserve_modes`]; owners are 0.
    pub fn add_tree(&mut self, root: &Path, opts: &Options) -> Result<(), Error> {
        let shown = root.display().to_string();
        let meta = match fs::metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::RootMissing { path: shown })
            }
            Err(error) => return Err(Error::Read { path: shown, error }),
        };
        if !meta.is_dir() {
            return Err(Error::RootNotDir { path: shown });
        }
        let read_err = |path: &Path| {
            let path = path.display().to_string();
            move |error| Error::Read { path, error }
        };
        let mut groups: HashMap<(u64, u64), u64> = HashMap::new();
        // Explicit stack: deep trees must not overflow the call stack. The
        // visiting order does not matter, the map sorts.
        let mut stack = vec![(root.to_path_buf(), Vec::new())];
        while let Some((dir, prefix)) = stack.pop() {
            for dirent in fs::read_dir(&dir).map_err(read_err(&dir))? {
                let dirent = dirent.map_err(read_err(&dir))?;
                let path = dirent.path();
                let mut name: Vec<u8> = prefix.clone();
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(dirent.file_name().as_bytes());
                if name.len() > crate::MAX_NAME_LEN {
                    return Err(Error::BadName {
                        path: path.display().to_string(),
                        what: "name",
                        why: format!(
                            "is {} bytes long; the kernel's unpacker skips names longer than {} bytes",
                            name.len(),
                            crate::MAX_NAME_LEN
                        ),
                    });
                }
                let meta = dirent.metadata().map_err(read_err(&path))?;
                let ft = meta.file_type();
                let kind = if ft.is_dir() {
                    stack.push((path.clone(), name.clone()));
                    Kind::Dir
                } else if ft.is_file() {
                    let size = meta.len();
                    if size > MAX_FILE_SIZE {
                        return Err(Error::TooLarge {
                            path: path.display().to_string(),
                            size,
                        });
                    }
                    let link_group = if meta.nlink() > 1 {
                        let next = &mut self.next_group;
                        Some(*groups.entry((meta.dev(), meta.ino())).or_insert_with(|| {
                            *next += 1;
                            *next
                        }))
                    } else {
                        None
                    };
                    Kind::File {
                        source: FileSource::Disk {
                            path: path.clone(),
                            size,
                        },
                        link_group,
                    }
                } else if ft.is_symlink() {
                    let target = fs::read_link(&path)
                        .map_err(read_err(&path))?
                        .into_os_string()
                        .into_vec();
                    check_target(&target).map_err(|why| Error::BadName {
                        path: path.display().to_string(),
                        what: "symlink target",
                        why,
                    })?;
                    Kind::Symlink { target }
                } else if ft.is_char_device() || ft.is_block_device() {
                    let (major, minor) = split_dev(meta.rdev());
                    if ft.is_char_device() {
                        Kind::CharDevice { major, minor }
                    } else {
                        Kind::BlockDevice { major, minor }
                    }
                } else if ft.is_fifo() {
                    Kind::Fifo
                } else if ft.is_socket() {
                    Kind::Socket
                } else {
                    return Err(Error::Read {
                        path: path.display().to_string(),
                        error: io::Error::other("unknown file type"),
                    });
                };
                let perm = tree_perm(&kind, meta.mode(), opts.preserve_modes);
                let node = Node {
                    kind,
                    perm,
                    uid: 0,
                    gid: 0,
                    origin: Origin::Tree(path),
                };
                self.place(name, node)
                    .map_err(|(path, message)| Error::Conflict { path, message })?;
            }
        }
        Ok(())
    }

    /// Applies a spec on top of the current entries, line by line:
    ///
    /// - each line adds its entry; an entry whose name already exists replaces
    ///   it (so `dir /etc 0700 0 0` changes the mode and owner of a directory
    ///   from the tree and keeps its contents, and `file` replaces a file);
    /// - missing parent directories are created as `0755`, owned by root;
    /// - a `file` line with extra names makes them hard links to one inode;
    /// - a `<location>` is checked now (it must be a regular file, following
    ///   symlinks) and read when the archive is written;
    /// - replacing a non-empty directory with something else, or adding below a
    ///   non-directory, is an error.
    ///
    /// This is how an unprivileged user adds `/dev/console`, owners and modes.
    pub fn apply_spec(&mut self, spec: &Spec) -> Result<(), Error> {
        for entry in spec.entries() {
            let origin = Origin::Spec {
                file: spec.path().to_path_buf(),
                line: entry.line,
            };
            let err = |message: String| Error::Spec {
                file: spec.path().to_path_buf(),
                line: entry.line,
                message,
            };
            let node = |kind| Node {
                kind,
                perm: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
                origin: origin.clone(),
            };
            let kind = match &entry.kind {
                SpecKind::File { location, links } => {
                    let shown = location.display();
                    let meta = fs::metadata(location)
                        .map_err(|e| err(format!("cannot read file <location> {shown}: {e}")))?;
                    if !meta.is_file() {
                        return Err(err(format!(
                            "file <location> {shown} is not a regular file"
                        )));
                    }
                    if meta.len() > MAX_FILE_SIZE {
                        return Err(Error::TooLarge {
                            path: format!(
                                "{}:{}: file <location> {shown}",
                                spec.path().display(),
                                entry.line
                            ),
                            size: meta.len(),
                        });
                    }
                    let link_group = if links.is_empty() {
                        None
                    } else {
                        Some(self.new_link_group())
                    };
                    let source = FileSource::Disk {
                        path: location.clone(),
                        size: meta.len(),
                    };
                    for name in std::iter::once(&entry.name).chain(links) {
                        let kind = Kind::File {
                            source: source.clone(),
                            link_group,
                        };
                        self.place(name.as_bytes().to_vec(), node(kind))
                            .map_err(|(_, m)| err(m))?;
                    }
                    continue;
                }
                SpecKind::Dir => Kind::Dir,
                SpecKind::Nod {
                    block: true,
                    major,
                    minor,
                } => Kind::BlockDevice {
                    major: *major,
                    minor: *minor,
                },
                SpecKind::Nod { major, minor, .. } => Kind::CharDevice {
                    major: *major,
                    minor: *minor,
                },
                SpecKind::Slink { target } => Kind::Symlink {
                    target: target.as_bytes().to_vec(),
                },
                SpecKind::Pipe => Kind::Fifo,
                SpecKind::Sock => Kind::Socket,
            };
            self.place(entry.name.as_bytes().to_vec(), node(kind))
                .map_err(|(_, m)| err(m))?;
        }
        Ok(())
    }

    /// Adds `node` as `name` (normalized: a leading `/`, `.` and empty components
    /// are dropped), creating missing parents like [`Initrd::apply_spec`], and
    /// returns the entry it replaced.
    pub fn insert(&mut self, name: &str, node: Node) -> Result<Option<Node>, Error> {
        let normalized = normalize_name(name.as_bytes()).map_err(|why| Error::BadName {
            path: name.to_string(),
            what: "name",
            why,
        })?;
        if let Kind::Symlink { target } = &node.kind {
            check_target(target).map_err(|why| Error::BadName {
                path: name.to_string(),
                what: "symlink target",
                why,
            })?;
        }
        if let Kind::File { source, .. } = &node.kind {
            if source.len() > MAX_FILE_SIZE {
                return Err(Error::TooLarge {
                    path: name.to_string(),
                    size: source.len(),
                });
            }
        }
        self.place(normalized, node)
            .map_err(|(path, message)| Error::Conflict { path, message })
    }

    /// The entry named `name` (normalized as in [`Initrd::insert`]).
    pub fn get(&self, name: &str) -> Option<&Node> {
        let name = normalize_name(name.as_bytes()).ok()?;
        self.nodes.get(&name)
    }

    /// All entries in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> + '_ {
        self.nodes.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Number of entries, not counting the trailer.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A hard link group number not used yet, for [`Kind::File::link_group`].
    pub fn new_link_group(&mut self) -> u64 {
        self.next_group += 1;
        self.next_group
    }

    /// Inserts after checking that the parents can be directories and that a
    /// directory with contents is not replaced by a non-directory. Nothing is
    /// changed on error, which is `(entry as shown to the user, why)`.
    fn place(&mut self, name: Vec<u8>, node: Node) -> Result<Option<Node>, (String, String)> {
        let shown = || describe(&name, &node.origin);
        let parents: Vec<usize> = name
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .collect();
        for &end in &parents {
            let parent = name.get(..end).unwrap_or_default();
            if let Some(existing) = self.nodes.get(parent) {
                if !existing.is_dir() {
                    return Err((
                        shown(),
                        format!(
                            "'{}' is a {} ({}), not a directory",
                            parent.escape_ascii(),
                            existing.kind.describe(),
                            describe(parent, &existing.origin)
                        ),
                    ));
                }
            }
        }
        if let Some(existing) = self.nodes.get(&name) {
            if existing.is_dir() && !node.is_dir() && self.has_children(&name) {
                return Err((
                    shown(),
                    format!(
                        "it would replace the directory '{}', which has entries, with a {}; remove them first",
                        name.escape_ascii(),
                        node.kind.describe()
                    ),
                ));
            }
        }
        for &end in &parents {
            let parent = name.get(..end).unwrap_or_default();
            if !self.nodes.contains_key(parent) {
                let mut dir = Node::dir(0o755);
                dir.origin = node.origin.clone();
                self.nodes.insert(parent.to_vec(), dir);
            }
        }
        Ok(self.nodes.insert(name, node))
    }

    fn has_children(&self, name: &[u8]) -> bool {
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        // All names starting with "name/" are contiguous in sorted order.
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// Checks that every symlink resolves to an entry of the image: absolute
    /// targets from the image root, relative ones from the link's directory,
    /// following further symlinks (at most 40, like the kernel). `..` at the
    /// root stays at the root. Fails on the first (in archive order) that does not.
    pub fn check_symlinks(&self) -> Result<(), Error> {
        for (name, node) in &self.nodes {
            if let Kind::Symlink { target } = &node.kind {
                if let Err(reason) = self.resolve(name, target) {
                    return Err(Error::DanglingSymlink {
                        link: describe(name, &node.origin),
                        target: target.escape_ascii().to_string(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// Resolves `target` of the symlink `link` inside the image.
    fn resolve(&self, link: &[u8], target: &[u8]) -> Result<(), &'static str> {
        if target.is_empty() {
            return Err("the target is empty");
        }
        let mut path: Vec<&[u8]> = link.split(|&b| b == b'/').collect();
        path.pop(); // the link itself
                    // Components still to walk, next one last.
        let mut pending: Vec<&[u8]> = Vec::new();
        push_components(&mut path, &mut pending, target);
        let mut follows = 0;
        let mut key = Vec::new();
        while let Some(part) = pending.pop() {
            match part {
                b"" | b"." => continue,
                b".." => {
                    path.pop();
                    continue;
                }
                _ => path.push(part),
            }
            key.clear();
            for (i, p) in path.iter().enumerate() {
                if i > 0 {
                    key.push(b'/');
                }
                key.extend_from_slice(p);
            }
            let Some(node) = self.nodes.get(&key) else {
                return Err("target not in the image");
            };
            match &node.kind {
                Kind::Dir => {}
                Kind::Symlink { target } => {
                    follows += 1;
                    if follows > MAX_SYMLINK_FOLLOWS {
                        return Err("too many levels of symbolic links (a loop?)");
                    }
                    path.pop();
                    push_components(&mut path, &mut pending, target);
                }
                // Anything but a directory must be the last component; a
                // trailing "/" or "/." after it fails on Linux too.
                _ if pending.is_empty() => {}
                _ => return Err("a component of the target is not a directory"),
            }
        }
        Ok(())
    }

    /// Exact size of the archive [`Initrd::write_cpio`] writes, if the files on
    /// disk keep their sizes.
    pub fn cpio_size(&self) -> u64 {
        let entries: u64 = self
            .nodes
            .keys()
            .zip(self.plan())
            .map(|(name, p)| cvmkit_cpio::entry_size(name.len() as u64, p.filesize))
            .sum();
        cvmkit_cpio::archive_size(entries)
    }

    /// Inode numbers, link counts and data sizes, in archive order.
    fn plan(&self) -> Vec<Planned> {
        let mut subdirs: HashMap<&[u8], u32> = HashMap::new();
        // group -> (members, index of the last member)
        let mut groups: HashMap<u64, (u32, usize)> = HashMap::new();
        for (i, (name, node)) in self.nodes.iter().enumerate() {
            match &node.kind {
                Kind::Dir => {
                    if let Some(slash) = name.iter().rposition(|&b| b == b'/') {
                        let count = subdirs
                            .entry(name.get(..slash).unwrap_or_default())
                            .or_insert(0);
                        *count = count.saturating_add(1);
                    }
                }
                Kind::File {
                    link_group: Some(g),
                    ..
                } => {
                    let e = groups.entry(*g).or_insert((0, i));
                    e.0 = e.0.saturating_add(1);
                    e.1 = i;
                }
                _ => {}
            }
        }
        let mut group_ino: HashMap<u64, u32> = HashMap::new();
        let mut next_ino = 0u32;
        let mut fresh = || {
            next_ino = next_ino.saturating_add(1);
            next_ino
        };
        let mut plan = Vec::with_capacity(self.nodes.len());
        for (i, (name, node)) in self.nodes.iter().enumerate() {
            let p = match &node.kind {
                Kind::Dir => Planned {
                    ino: fresh(),
                    nlink: subdirs
                        .get(name.as_slice())
                        .copied()
                        .unwrap_or(0)
                        .saturating_add(2),
                    filesize: 0,
                },
                Kind::File { source, link_group } => {
                    match link_group.and_then(|g| Some((g, *groups.get(&g)?))) {
                        Some((g, (members, last))) if members > 1 => Planned {
                            ino: *group_ino.entry(g).or_insert_with(&mut fresh),
                            nlink: members,
                            filesize: if i == last { source.len() } else { 0 },
                        },
                        _ => Planned {
                            ino: fresh(),
                            nlink: 1,
                            filesize: source.len(),
                        },
                    }
                }
                Kind::Symlink { target } => Planned {
                    ino: fresh(),
                    nlink: 1,
                    filesize: target.len() as u64,
                },
                _ => Planned {
                    ino: fresh(),
                    nlink: 1,
                    filesize: 0,
                },
            };
            plan.push(p);
        }
        plan
    }

    /// Writes the archive: every entry in bytewise name order, then the trailer,
    /// padded to 512 bytes. Returns the number of bytes written.
    ///
    /// File contents are streamed from disk. A file whose size differs from the
    /// size it had when it was listed is an error.
    pub fn write_cpio(&self, opts: &Options, out: &mut dyn Write) -> Result<u64, Error> {
        self.write_cpio_observed(opts, out, &mut |_, _| {})
    }

    /// [`write_cpio`](Self::write_cpio), handing each regular file's contents to `observe`
    /// (entry name, a piece of the contents) as they are written, in order: what a caller
    /// hashes per file without reading the files again. Of a group of hard links only the entry
    /// that carries the data is observed; an empty file is not.
    pub fn write_cpio_observed(
        &self,
        opts: &Options,
        out: &mut dyn Write,
        observe: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<u64, Error> {
        if self.nodes.len() >= u32::MAX as usize {
            return Err(Error::Conflict {
                path: "the image".into(),
                message: format!(
                    "{} entries do not fit the 32-bit inode numbers of newc cpio",
                    self.nodes.len()
                ),
            });
        }
        let mut w = Writer::new(out);
        for ((name, node), p) in self.nodes.iter().zip(self.plan()) {
            let (rdevmajor, rdevminor) = match node.kind {
                Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                    (major, minor)
                }
                _ => (0, 0),
            };
            let header = Header {
                ino: p.ino,
                mode: node.type_bits() | (node.perm & mode::PERMISSION_BITS),
                uid: node.uid,
                gid: node.gid,
                nlink: p.nlink,
                mtime: opts.mtime,
                // Checked against MAX_FILE_SIZE when the entry was added.
                filesize: u32::try_from(p.filesize).map_err(|_| Error::TooLarge {
                    path: describe(name, &node.origin),
                    size: p.filesize,
                })?,
                devmajor: 0,
                devminor: 0,
                rdevmajor,
                rdevminor,
            };
            match &node.kind {
                Kind::File {
                    source: FileSource::Disk { path, size },
                    ..
                } if p.filesize > 0 || *size == 0 => write_disk_file(&mut w, name, &header, path, observe)?,
                Kind::File {
                    source: FileSource::Bytes(bytes),
                    ..
                } if p.filesize > 0 => {
                    observe(name, bytes);
                    w.write_entry(name, &header, &mut bytes.as_slice())
                        .map_err(Error::Write)?
                }
                Kind::Symlink { target } => w
                    .write_entry(name, &header, &mut target.as_slice())
                    .map_err(Error::Write)?,
                _ => w
                    .write_entry(name, &header, &mut io::empty())
                    .map_err(Error::Write)?,
            }
        }
        let entries_len = w.bytes_written();
        w.finish().map_err(Error::Write)?;
        Ok(cvmkit_cpio::archive_size(entries_len))
    }
}

/// Splits `target` into components and queues them; an absolute target
/// restarts from the root.
fn push_components<'a>(path: &mut Vec<&'a [u8]>, pending: &mut Vec<&'a [u8]>, target: &'a [u8]) {
    if target.first() == Some(&b'/') {
        path.clear();
    }
    pending.extend(target.split(|&b| b == b'/').rev());
}

fn check_target(target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("is empty".into());
    }
    if target.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    if target.len() > MAX_SYMLINK_TARGET {
        return Err(format!(
            "is {} bytes long; the kernel's unpacker skips symlinks with targets longer than {MAX_SYMLINK_TARGET} bytes",
            target.len()
        ));
    }
    Ok(())
}

/// Reads `path` into the archive, checking that its size has not changed since
/// it was listed (`header.filesize` is that size).
fn write_disk_file(
    w: &mut Writer<&mut dyn Write>,
    name: &[u8],
    header: &Header,
    path: &Path,
    observe: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<(), Error> {
    let shown = || path.display().to_string();
    let mut file = fs::File::open(path).map_err(|error| Error::Read {
        path: shown(),
        error,
    })?;
    let mut tracked = Tracked {
        inner: &mut file,
        read: 0,
        failed: false,
        name,
        observe,
    };
    let expected = u64::from(header.filesize);
    if let Err(error) = w.write_entry(name, header, &mut tracked) {
        return Err(if tracked.failed {
            Error::Read {
                path: shown(),
                error,
            }
        } else if tracked.read < expected && error.kind() == io::ErrorKind::UnexpectedEof {
            Error::Changed {
                path: shown(),
                expected,
                now: format!("but only {} could be read", tracked.read),
            }
        } else {
            Error::Write(error)
        });
    }
    // One more byte means the file grew since it was listed.
    let mut probe = [0u8; 1];
    loop {
        return match file.read(&mut probe) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::Changed {
                path: shown(),
                expected,
                now: "but it has grown".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => Err(Error::Read {
                path: shown(),
                error,
            }),
        };
    }
}

/// Counts bytes read and remembers whether reading failed, so that errors from
/// [`Writer::write_entry`] can be told apart from write errors; hands what it
/// reads to the observer of [`Initrd::write_cpio_observed`].
struct Tracked<'a> {
    inner: &'a mut fs::File,
    read: u64,
    failed: bool,
    name: &'a [u8],
    observe: &'a mut dyn FnMut(&[u8], &[u8]),
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                (self.observe)(self.name, &buf[..n]);
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entries: &[(&str, Node)]) -> Initrd {
        let mut i = Initrd::new();
        for (name, node) in entries {
            i.insert(name, node.clone()).unwrap();
        }
        i
    }

    #[test]
    fn dev_t_is_split_like_glibc() {
        // makedev(5, 1) and makedev(259, 70000) as glibc's sys/sysmacros.h
        // computes them: (minor & 0xff) | ((major & 0xfff) << 8) |
        // ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32).
        assert_eq!(split_dev(0x501), (5, 1));
        let dev: u64 = (70000 & 0xff) | ((259 & 0xfff) << 8) | ((70000u64 & !0xff) << 12);
        assert_eq!(split_dev(dev), (259, 70000));
    }

    #[test]
    fn symlinks_resolve_inside_the_image() {
        let i = image(&[
            ("bin/busybox", Node::file_bytes(vec![1], 0o755)),
            ("bin/sh", Node::symlink("busybox")),
            ("sbin/init", Node::symlink("../bin/sh")),
            ("init", Node::symlink("/sbin/init")),
            ("lib64", Node::symlink("lib")),
            ("lib", Node::dir(0o755)),
            ("usr/bin", Node::symlink("../bin")),
            ("usr/sbin/x", Node::symlink("../bin/sh")),
            ("up", Node::symlink("../../../bin/./sh")),
            ("root", Node::symlink("/")),
            ("deep", Node::symlink("usr/bin/sh")),
        ]);
        assert!(i.check_symlinks().is_ok());
        for (link, target) in [
            ("init", &b"/sbin/init"[..]),
            ("deep", b"usr/bin/sh"),
            ("up", b"../../../bin/./sh"),
        ] {
            assert_eq!(i.resolve(link.as_bytes(), target), Ok(()), "{link}");
        }
        // usr/sbin/x -> ../bin/sh resolves from usr/sbin to usr/bin/sh, and usr/bin -> ../bin.
        assert_eq!(i.resolve(b"usr/sbin/x", b"../bin/sh"), Ok(()));
        assert_eq!(
            i.resolve(b"a", b"/bin/nope"),
            Err("target not in the image")
        );
        assert_eq!(
            i.resolve(b"a", b"bin/sh/"),
            Err("a component of the target is not a directory")
        );
        assert_eq!(
            i.resolve(b"a", b"bin/busybox/x"),
            Err("a component of the target is not a directory")
        );
        assert_eq!(i.resolve(b"a", b"lib64/"), Ok(()));
    }

    #[test]
    fn symlink_loops_are_reported() {
        let i = image(&[("a", Node::symlink("b")), ("b", Node::symlink("/a"))]);
        let err = i.check_symlinks().unwrap_err().to_string();
        assert_eq!(
            err,
            "dangling symlink /a -> b: too many levels of symbolic links (a loop?) (use --allow-dangling-symlinks to keep it)"
        );
    }

    #[test]
    fn hard_links_share_an_inode_and_store_data_on_the_last_name() {
        let mut i = Initrd::new();
        let g = i.new_link_group();
        let file = |s: &str| Node {
            kind: Kind::File {
                source: FileSource::Bytes(s.as_bytes().to_vec()),
                link_group: Some(g),
            },
            ..Node::dir(0o644)
        };
        i.insert("b", file("data")).unwrap();
        i.insert("a", file("data")).unwrap();
        i.insert("c", Node::dir(0o755)).unwrap();
        i.insert("c/d", file("data")).unwrap();
        let plan = i.plan();
        // Order a, b, c, c/d: the group gets inode 1 (its first name), c gets 2.
        let got: Vec<_> = plan.iter().map(|p| (p.ino, p.nlink, p.filesize)).collect();
        assert_eq!(got, [(1, 3, 0), (1, 3, 0), (2, 2, 0), (1, 3, 4)]);
    }

    #[test]
    fn a_group_reduced_to_one_member_is_a_plain_file() {
        let mut i = Initrd::new();
        let g = i.new_link_group();
        let linked = Node {
            kind: Kind::File {
                source: FileSource::Bytes(b"x".to_vec()),
                link_group: Some(g),
            },
            ..Node::dir(0o644)
        };
        i.insert("a", linked.clone()).unwrap();
        i.insert("b", linked).unwrap();
        i.insert("b", Node::dir(0o755)).unwrap();
        let got: Vec<_> = i
            .plan()
            .iter()
            .map(|p| (p.ino, p.nlink, p.filesize))
            .collect();
        assert_eq!(got, [(1, 1, 1), (2, 2, 0)]);
    }

    #[test]
    fn directory_link_counts_count_subdirectories() {
        let i = image(&[
            ("a/b/c", Node::dir(0o755)),
            ("a/d", Node::dir(0o755)),
            ("a/f", Node::file_bytes(vec![], 0o644)),
        ]);
        let got: Vec<_> = i.plan().iter().map(|p| p.nlink).collect();
        // a (b, d), a/b (c), a/b/c, a/d, a/f
        assert_eq!(got, [4, 3, 2, 2, 1]);
    }

    #[test]
    fn conflicting_inserts_change_nothing() {
        let mut i = image(&[("etc/passwd", Node::file_bytes(vec![], 0o644))]);
        let err = i
            .insert("etc", Node::symlink("/x"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot add /etc: it would replace the directory 'etc', which has entries, with a symlink; remove them first"
        );
        let err = i
            .insert("etc/passwd/x/y", Node::dir(0o755))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "cannot add /etc/passwd/x/y: 'etc/passwd' is a regular file (/etc/passwd), not a directory");
        assert_eq!(i.len(), 2);
        // Replacing a directory by a directory keeps its contents.
        i.insert("/etc/", Node::dir(0o700)).unwrap();
        assert_eq!(i.get("etc").unwrap().perm, 0o700);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn names_given_to_insert_are_checked() {
        let mut i = Initrd::new();
        let err = i
            .insert("a/../b", Node::dir(0o755))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "a/../b cannot be stored in the initrd: its name contains a '..' component, which could point outside the image"
        );
        let err = i
            .insert("l", Node::symlink("a\0b"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "l cannot be stored in the initrd: its symlink target contains a NUL byte"
        );
    }
}
