//! End-to-end tests of `cvmkit_initrd::build`: real trees in temporary
//! directories, checked with independent tools (GNU cpio, gzip, zstd) where
//! the expected value is not a matter of this crate's own rules.
//!
//! Needs `cpio`, `gzip`, `zstd` and `mkfifo` on the PATH
//! (`apt-get install -y --no-install-recommends cpio zstd`).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cvmkit_initrd::{
    build, Compression, Error, FileSource, Initrd, Kind, Node, Options, Spec, Stats,
};

const MTIME: u32 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

/// Runs `program args`, feeding it `stdin`, in `dir`; returns stdout, and fails
/// the test with stderr if the program fails.
fn run(program: &str, args: &[&str], stdin: &[u8], dir: &Path) -> Vec<u8> {
    let out = cvmkit_testutil::output_with_stdin(
        Command::new(cvmkit_testutil::require_tool(
            program,
            if matches!(program, "mkfifo" | "mknod") {
                "coreutils"
            } else {
                program
            },
        ))
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C"),
        stdin,
        cvmkit_testutil::RUN_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// GNU cpio's verbose listing, with runs of blanks squeezed to one space.
fn gnu_listing(archive: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "cpio",
        &["-itv", "--numeric-uid-gid", "--quiet"],
        archive,
        tmp.path(),
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n")
        .collect()
}

/// Writes `data` to `root/name` with permission bits `perm` (explicitly, so the
/// umask does not matter), creating parents.
fn put(root: &Path, name: &str, data: &[u8], perm: u32) {
    let path = root.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(perm)).unwrap();
}

fn mkdir(root: &Path, name: &str, perm: u32) {
    let path = root.join(name);
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(perm)).unwrap();
}

fn symlink(root: &Path, name: &str, target: &str) {
    let path = root.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn opts() -> Options {
    Options {
        mtime: MTIME,
        ..Options::default()
    }
}

/// Builds an uncompressed archive.
fn cpio(
    root: Option<&Path>,
    spec: Option<&Spec>,
    opts: &Options,
) -> Result<(Vec<u8>, Stats), Error> {
    let mut out = Vec::new();
    let stats = build(root, spec, opts, Compression::None, &mut out)?;
    Ok((out, stats))
}

fn names(archive: &[u8]) -> Vec<String> {
    cvmkit_cpio::Reader::new(archive)
        .map(|e| String::from_utf8(e.unwrap().name.to_vec()).unwrap())
        .collect()
}

/// A tree and a spec that use every feature: normalized modes, hard links on
/// disk and in the spec, symlinks (relative, absolute), on-disk FIFO and socket,
/// spec devices, pipes, sockets, owners, a mode override and implied parents.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    spec: Spec,
    _socket: std::os::unix::net::UnixListener,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    put(&root, "bin/busybox", b"BB", 0o700);
    symlink(&root, "bin/sh", "busybox");
    put(&root, "etc/hostname", b"cvm\n", 0o600);
    put(&root, "lib/a", b"shared", 0o640);
    fs::hard_link(root.join("lib/a"), root.join("lib/b")).unwrap();
    symlink(&root, "sbin/init", "/bin/busybox");
    mkdir(&root, "empty", 0o700);
    mkdir(&root, "tmp", 0o1777);
    run("mkfifo", &["-m", "0600", "tmp/fifo"], b"", &root);
    let socket = std::os::unix::net::UnixListener::bind(root.join("tmp/sock")).unwrap();
    fs::set_permissions(root.join("tmp/sock"), fs::Permissions::from_mode(0o755)).unwrap();

    let conf = tmp.path().join("conf");
    put(&conf, "motd.txt", b"welcome\n", 0o600);
    put(&conf, "x.bin", b"xyz", 0o600);
    let spec_path = conf.join("initrd.list");
    let text = "\
# overrides and additions
dir /etc 0700 0 0
nod /dev/console 0600 0 0 c 5 1
dir /root 0700 0 0
file /etc/motd motd.txt 0644 0 0
pipe /run/initctl 0600 0 0
sock /run/sock 0666 0 0
slink /init /sbin/init 0777 0 0
file /usr/bin/x x.bin 0755 1000 1000 /usr/bin/y
";
    let spec = Spec::parse(text, &spec_path).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        spec,
        _socket: socket,
    }
}

/// Archive contents as GNU cpio lists them, and inode numbers and extraction.
mod gnu_cpio {
    use super::*;

    #[test]
    fn lists_names_modes_sizes_targets_devices_and_links() {
        let f = fixture();
        let (archive, stats) = cpio(Some(&f.root), Some(&f.spec), &opts()).unwrap();
        // Expected from the rules in the crate docs (modes normalized, owners 0
        // unless the spec says, data of a hard link group on its last name),
        // in GNU cpio 2.13's listing format.
        let expected = "\
drwxr-xr-x 2 0 0 0 Nov 14 2023 bin
-rwxr-xr-x 1 0 0 2 Nov 14 2023 bin/busybox
lrwxrwxrwx 1 0 0 7 Nov 14 2023 bin/sh -> busybox
drwxr-xr-x 2 0 0 0 Nov 14 2023 dev
crw------- 1 0 0 5, 1 Nov 14 2023 dev/console
drwxr-xr-x 2 0 0 0 Nov 14 2023 empty
drwx------ 2 0 0 0 Nov 14 2023 etc
-rw-r--r-- 1 0 0 4 Nov 14 2023 etc/hostname
-rw-r--r-- 1 0 0 8 Nov 14 2023 etc/motd
lrwxrwxrwx 1 0 0 10 Nov 14 2023 init -> /sbin/init
drwxr-xr-x 2 0 0 0 Nov 14 2023 lib
-rw-r--r-- 2 0 0 0 Nov 14 2023 lib/a
-rw-r--r-- 2 0 0 6 Nov 14 2023 lib/b
drwx------ 2 0 0 0 Nov 14 2023 root
drwxr-xr-x 2 0 0 0 Nov 14 2023 run
prw------- 1 0 0 0 Nov 14 2023 run/initctl
srw-rw-rw- 1 0 0 0 Nov 14 2023 run/sock
drwxr-xr-x 2 0 0 0 Nov 14 2023 sbin
lrwxrwxrwx 1 0 0 12 Nov 14 2023 sbin/init -> /bin/busybox
drwxr-xr-x 2 0 0 0 Nov 14 2023 tmp
prw------- 1 0 0 0 Nov 14 2023 tmp/fifo
srwxr-xr-x 1 0 0 0 Nov 14 2023 tmp/sock
drwxr-xr-x 3 0 0 0 Nov 14 2023 usr
drwxr-xr-x 2 0 0 0 Nov 14 2023 usr/bin
-rwxr-xr-x 2 1000 1000 0 Nov 14 2023 usr/bin/x
-rwxr-xr-x 2 1000 1000 3 Nov 14 2023 usr/bin/y
";
        assert_eq!(gnu_listing(&archive), expected);
        assert_eq!(stats.entries, 26);
        assert_eq!(stats.cpio_bytes, archive.len() as u64);
        assert_eq!(archive.len() % 512, 0);
    }

    #[test]
    fn inode_numbers_count_from_one_in_archive_order_and_links_share_one() {
        let f = fixture();
        let (archive, _) = cpio(Some(&f.root), Some(&f.spec), &opts()).unwrap();
        let inos: Vec<(String, u32)> = cvmkit_cpio::Reader::new(&archive)
            .map(|e| e.unwrap())
            .map(|e| (String::from_utf8(e.name.to_vec()).unwrap(), e.header.ino))
            .collect();
        let mut expected_next = 1;
        for (i, (name, ino)) in inos.iter().enumerate() {
            if name == "lib/b" || name == "usr/bin/y" {
                assert_eq!(
                    *ino,
                    inos[i - 1].1,
                    "{name} shares the inode of the previous name"
                );
            } else {
                assert_eq!(*ino, expected_next, "{name}");
                expected_next += 1;
            }
        }
        let header = |name: &str| {
            cvmkit_cpio::Reader::new(&archive)
                .map(|e| e.unwrap())
                .find(|e| e.name == name.as_bytes())
                .unwrap()
                .header
        };
        assert!(
            cvmkit_cpio::Reader::new(&archive).all(|e| e
                .as_ref()
                .is_ok_and(|e| e.header.mtime == MTIME
                    && e.header.devmajor == 0
                    && e.header.devminor == 0))
        );
        assert_eq!(header("tmp").mode & 0o7777, 0o755, "sticky bit dropped");
    }

    #[test]
    fn extracts_contents_links_and_modes() {
        let f = fixture();
        let (archive, _) = cpio(Some(&f.root), Some(&f.spec), &opts()).unwrap();
        let out = tempfile::tempdir().unwrap();
        // Device nodes are left out: creating them may need privileges.
        run(
            "cpio",
            &["-idm", "--quiet", "-f", "dev/*"],
            &archive,
            out.path(),
        );
        let o = out.path();
        assert_eq!(fs::read(o.join("bin/busybox")).unwrap(), b"BB");
        assert_eq!(fs::read(o.join("etc/motd")).unwrap(), b"welcome\n");
        assert_eq!(
            fs::read_link(o.join("sbin/init")).unwrap(),
            Path::new("/bin/busybox")
        );
        for (a, b, data) in [
            ("lib/a", "lib/b", &b"shared"[..]),
            ("usr/bin/x", "usr/bin/y", b"xyz"),
        ] {
            let (ma, mb) = (
                fs::metadata(o.join(a)).unwrap(),
                fs::metadata(o.join(b)).unwrap(),
            );
            assert_eq!(ma.ino(), mb.ino(), "{a} and {b} are one file");
            assert_eq!(fs::read(o.join(a)).unwrap(), data);
        }
        let mode = |n: &str| {
            fs::symlink_metadata(o.join(n))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("bin/busybox"), 0o755);
        assert_eq!(mode("etc/hostname"), 0o644);
        assert_eq!(mode("etc"), 0o700);
        assert_eq!(
            fs::metadata(o.join("etc/hostname")).unwrap().mtime(),
            i64::from(MTIME)
        );
    }

    /// Only root can create device nodes (the spec path, `nod`, is covered
    /// by the listing test as any user): run as root with `--include-ignored`.
    #[test]
    #[ignore = "needs root"]
    fn device_nodes_on_disk_keep_their_numbers() {
        let tmp = tempfile::tempdir().unwrap();
        run(
            "mknod",
            &["-m", "0666", "null", "c", "1", "3"],
            b"",
            tmp.path(),
        );
        let (archive, _) = cpio(Some(tmp.path()), None, &opts()).unwrap();
        assert_eq!(
            gnu_listing(&archive),
            "crw-rw-rw- 1 0 0 1, 3 Nov 14 2023 null\n"
        );
    }

    #[test]
    fn a_static_busybox_survives_the_round_trip() {
        // A realistic binary from the project's inputs: it must still run
        // after GNU cpio extracts it.
        // $BUSYBOX, else inputs.env; missing, the test fails naming it.
        let busybox = cvmkit_testutil::busybox();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::copy(&busybox, root.join("bin/busybox")).unwrap();
        symlink(&root, "bin/sh", "busybox");
        let spec = Spec::parse("slink /init /bin/sh 0777 0 0\n", &tmp.path().join("s")).unwrap();
        let mut gz = Vec::new();
        build(
            Some(&root),
            Some(&spec),
            &opts(),
            Compression::gzip(),
            &mut gz,
        )
        .unwrap();
        let cpio_bytes = run("gzip", &["-dc"], &gz, tmp.path());
        let out = tmp.path().join("out");
        fs::create_dir(&out).unwrap();
        run("cpio", &["-idm", "--quiet"], &cpio_bytes, &out);
        assert_eq!(
            fs::read(out.join("bin/busybox")).unwrap(),
            fs::read(&busybox).unwrap()
        );
        let said = run(
            out.join("bin/busybox").to_str().unwrap(),
            &["echo", "hello"],
            b"",
            &out,
        );
        assert_eq!(said, b"hello\n");
        // Through the relative symlink, busybox runs as its shell applet.
        let said = run(
            out.join("bin/sh").to_str().unwrap(),
            &["-c", "echo $((6 * 7))"],
            b"",
            &out,
        );
        assert_eq!(said, b"42\n");
        assert_eq!(
            fs::read_link(out.join("init")).unwrap(),
            Path::new("/bin/sh")
        );
    }
}

/// Same inputs, same bytes: order of creation, permission bits, location.
mod determinism {
    use super::*;

    fn make(root: &Path, order: &[&str], perm_file: u32, perm_exec: u32, perm_dir: u32) {
        for name in order {
            match *name {
                "d" => mkdir(root, "d", perm_dir),
                "d/x" => put(root, "d/x", b"x", perm_exec),
                n => put(root, n, n.as_bytes(), perm_file),
            }
        }
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(perm_dir)).unwrap();
    }

    const ORDER_A: [&str; 6] = ["a", "b", "d", "d/x", "z", "a.b"];
    const ORDER_B: [&str; 6] = ["a.b", "z", "d", "d/x", "b", "a"];

    #[test]
    fn output_ignores_creation_order_permissions_and_build_path() {
        let tmp = tempfile::tempdir().unwrap();
        let (one, two) = (tmp.path().join("one"), tmp.path().join("deeper/two"));
        // What umask 022 and umask 077 would have produced.
        make(&one, &ORDER_A, 0o644, 0o755, 0o755);
        make(&two, &ORDER_B, 0o600, 0o700, 0o700);
        let (a, _) = cpio(Some(&one), None, &opts()).unwrap();
        let (b, _) = cpio(Some(&two), None, &opts()).unwrap();
        assert!(a == b, "archives differ");
        // Bytewise order: "a" < "a.b" < "b" < "d" < "d/x" < "z" ('.' < '/' < letters).
        assert_eq!(names(&a), ["a", "a.b", "b", "d", "d/x", "z"]);
        // Building twice gives the same compressed bytes too.
        for c in [Compression::gzip(), Compression::zstd()] {
            let mut x = Vec::new();
            let mut y = Vec::new();
            build(Some(&one), None, &opts(), c, &mut x).unwrap();
            build(Some(&two), None, &opts(), c, &mut y).unwrap();
            assert!(x == y, "{c} output differs");
        }
    }

    #[test]
    fn preserve_modes_keeps_the_disk_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        put(root, "f", b"", 0o4750);
        mkdir(root, "d", 0o1777);
        let keep = Options {
            preserve_modes: true,
            ..opts()
        };
        let (archive, _) = cpio(Some(root), None, &keep).unwrap();
        assert_eq!(
            gnu_listing(&archive),
            "drwxrwxrwt 2 0 0 0 Nov 14 2023 d\n-rwsr-x--- 1 0 0 0 Nov 14 2023 f\n"
        );
        let (normal, _) = cpio(Some(root), None, &opts()).unwrap();
        assert_eq!(
            gnu_listing(&normal),
            "drwxr-xr-x 2 0 0 0 Nov 14 2023 d\n-rwxr-xr-x 1 0 0 0 Nov 14 2023 f\n"
        );
    }

    #[test]
    fn mtime_comes_only_from_the_options() {
        let tmp = tempfile::tempdir().unwrap();
        put(tmp.path(), "f", b"1", 0o644);
        let (zero, _) = cpio(Some(tmp.path()), None, &Options::default()).unwrap();
        assert_eq!(gnu_listing(&zero), "-rw-r--r-- 1 0 0 1 Jan 1 1970 f\n");
    }
}

/// How a spec combines with a tree.
mod spec {
    use super::*;

    #[test]
    fn spec_entries_replace_tree_entries_and_create_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        put(&root, "etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644);
        put(&root, "bin/true", b"tree", 0o755);
        put(tmp.path(), "new-true", b"spec", 0o644);
        let spec = Spec::parse(
            "dir /etc 0750 0 42\nfile /bin/true new-true 0555 0 0\nnod /a/b/c 0600 0 0 b 8 0\n",
            &tmp.path().join("s.list"),
        )
        .unwrap();
        let (archive, _) = cpio(Some(&root), Some(&spec), &opts()).unwrap();
        assert_eq!(
            gnu_listing(&archive),
            "\
drwxr-xr-x 3 0 0 0 Nov 14 2023 a
drwxr-xr-x 2 0 0 0 Nov 14 2023 a/b
brw------- 1 0 0 8, 0 Nov 14 2023 a/b/c
drwxr-xr-x 2 0 0 0 Nov 14 2023 bin
-r-xr-xr-x 1 0 0 4 Nov 14 2023 bin/true
drwxr-x--- 2 0 42 0 Nov 14 2023 etc
-rw-r--r-- 1 0 0 26 Nov 14 2023 etc/passwd
"
        );
    }

    #[test]
    fn spec_errors_name_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let spec_path = tmp.path().join("s.list");
        let spec = Spec::parse("dir /x 0755 0 0\nfile /y missing 0644 0 0\n", &spec_path).unwrap();
        let err = cpio(None, Some(&spec), &opts()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: cannot read file <location> {}: No such file or directory (os error 2)",
                spec_path.display(),
                tmp.path().join("missing").display()
            )
        );
        put(tmp.path(), "f", b"", 0o644);
        let spec =
            Spec::parse("file /f f 0644 0 0\n\n# x\ndir /f/g 0755 0 0\n", &spec_path).unwrap();
        let err = cpio(None, Some(&spec), &opts()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:4: 'f' is a regular file (/f ({}:1)), not a directory",
                spec_path.display(),
                spec_path.display()
            )
        );
        let spec = Spec::parse("file /f f 0644 0 0\n", &spec_path).unwrap();
        let root = tmp.path().join("root");
        put(&root, "f/inside", b"", 0o644);
        let err = cpio(Some(&root), Some(&spec), &opts())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:1: it would replace the directory 'f', which has entries, with a regular file; remove them first",
                spec_path.display()
            )
        );
    }

    #[test]
    fn spec_only_build_needs_no_tree() {
        let spec = Spec::parse("nod /dev/console 0600 0 0 c 5 1\n", Path::new("s")).unwrap();
        let (archive, stats) = cpio(None, Some(&spec), &opts()).unwrap();
        assert_eq!(names(&archive), ["dev", "dev/console"]);
        assert_eq!(stats.entries, 2);
    }
}

/// Symlinks must resolve inside the image unless allowed not to.
mod symlinks {
    use super::*;

    #[test]
    fn dangling_symlink_is_an_error_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ROOT");
        symlink(&root, "sbin/init", "/bin/nope");
        let err = cpio(Some(&root), None, &opts()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "dangling symlink {}/sbin/init -> /bin/nope: target not in the image (use --allow-dangling-symlinks to keep it)",
                root.display()
            )
        );
        let allow = Options {
            allow_dangling_symlinks: true,
            ..opts()
        };
        let (archive, _) = cpio(Some(&root), None, &allow).unwrap();
        assert_eq!(
            gnu_listing(&archive),
            "drwxr-xr-x 2 0 0 0 Nov 14 2023 sbin\nlrwxrwxrwx 1 0 0 9 Nov 14 2023 sbin/init -> /bin/nope\n"
        );
    }

    #[test]
    fn absolute_targets_resolve_against_the_root_not_the_host() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        // Exists only in the image.
        put(&root, "cvmkit-only/busybox", b"", 0o755);
        symlink(&root, "sbin/init", "/cvmkit-only/busybox");
        // Through a chain of a relative and an absolute link, and "..".
        symlink(&root, "usr/sbin", "../sbin");
        symlink(&root, "linuxrc", "usr/sbin/../sbin/init");
        assert!(cpio(Some(&root), None, &opts()).is_ok());
        // Exists on the host but not in the image.
        assert!(Path::new("/etc/passwd").exists());
        symlink(&root, "passwd", "/etc/passwd");
        let err = cpio(Some(&root), None, &opts()).unwrap_err();
        assert!(matches!(err, Error::DanglingSymlink { .. }), "{err}");
        // Added by the spec, the target makes the link valid.
        let spec = Spec::parse(
            "dir /etc 0755 0 0\nfile /etc/passwd p 0644 0 0\n",
            &tmp.path().join("s"),
        )
        .unwrap();
        put(tmp.path(), "p", b"root:x:0:0\n", 0o644);
        assert!(cpio(Some(&root), Some(&spec), &opts()).is_ok());
    }
}

/// Errors name the path and never panic.
mod errors {
    use super::*;

    #[test]
    fn missing_root_and_file_root() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = cpio(Some(&missing), None, &opts()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "root directory {} does not exist; pass the directory whose contents become the initrd",
                missing.display()
            )
        );
        put(tmp.path(), "file", b"", 0o644);
        let err = cpio(Some(&tmp.path().join("file")), None, &opts())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "file is not a directory; pass the directory whose contents become the initrd"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_file_over_4_gib_is_refused_before_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ROOT");
        fs::create_dir(&root).unwrap();
        // Sparse: takes no disk space.
        fs::File::create(root.join("big"))
            .unwrap()
            .set_len(1 << 32)
            .unwrap();
        let err = cpio(Some(&root), None, &opts()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}/big is 4294967296 bytes; newc cpio holds at most 4294967295 bytes per file",
                root.display()
            )
        );
    }

    #[test]
    fn a_file_that_changes_size_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        put(tmp.path(), "f", b"12345", 0o644);
        let path = tmp.path().join("f");
        for (listed, now) in [(9, "but only 5 could be read"), (3, "but it has grown")] {
            let mut initrd = Initrd::new();
            let node = Node::new(
                Kind::File {
                    source: FileSource::Disk {
                        path: path.clone(),
                        size: listed,
                    },
                    link_group: None,
                },
                0o644,
            );
            initrd.insert("f", node).unwrap();
            let err = initrd
                .write_cpio(&opts(), &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "{} changed size while being read: it was {listed} bytes, {now}; build from a tree nothing is writing to",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn a_vanished_file_is_a_read_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        put(&root, "f", b"x", 0o644);
        let initrd = Initrd::from_tree(&root, &opts()).unwrap();
        fs::remove_file(root.join("f")).unwrap();
        let err = initrd
            .write_cpio(&opts(), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot read {}/f: No such file or directory (os error 2)",
                root.display()
            )
        );
    }
}

/// Compressed output is standard and decompresses to the exact archive.
mod compression {
    use super::*;

    fn compressed(c: Compression) -> (Vec<u8>, Vec<u8>, Stats) {
        let f = fixture();
        let (plain, _) = cpio(Some(&f.root), Some(&f.spec), &opts()).unwrap();
        let mut out = Vec::new();
        let stats = build(Some(&f.root), Some(&f.spec), &opts(), c, &mut out).unwrap();
        (plain, out, stats)
    }

    #[test]
    fn gzip_output_is_plain_gzip_of_the_archive() {
        let tmp = tempfile::tempdir().unwrap();
        for level in [1, 7, 12] {
            let (plain, gz, stats) = compressed(Compression::Gzip { level });
            run("gzip", &["-t"], &gz, tmp.path());
            assert!(
                run("gzip", &["-dc"], &gz, tmp.path()) == plain,
                "level {level}"
            );
            assert_eq!(
                (stats.cpio_bytes, stats.output_bytes),
                (plain.len() as u64, gz.len() as u64)
            );
            // No name flag, mtime 0, XFL 0, OS 3 (Unix) as RFC 1952 lays them out.
            assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        }
    }

    #[test]
    fn zstd_output_is_one_frame_with_size_and_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let (plain, zst, stats) = compressed(Compression::zstd());
        run("zstd", &["-t", "-q"], &zst, tmp.path());
        assert!(run("zstd", &["-dc"], &zst, tmp.path()) == plain);
        assert_eq!(stats.output_bytes, zst.len() as u64);
        fs::write(tmp.path().join("x.zst"), &zst).unwrap();
        let info = String::from_utf8(run("zstd", &["-lv", "x.zst"], b"", tmp.path())).unwrap();
        assert!(info.contains("# Zstandard Frames: 1"), "{info}");
        assert!(info.contains("Check: XXH64"), "{info}");
        let size_line = info
            .lines()
            .find(|l| l.starts_with("Decompressed Size:"))
            .unwrap_or_default();
        assert!(
            size_line.ends_with(&format!("({} B)", plain.len())),
            "content size recorded: {info}"
        );
    }
}
