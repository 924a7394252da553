//! Integration tests: fake Debian-like trees in temp dirs, checked against listings made by
//! `find`, which knows nothing of this crate.
//!
//! - `default_config_*`: the built-in config on a tree with one of everything it targets;
//!   exact removal sets per rule, byte counts, keep rules, dangling-link warnings, escaping.
//! - `dry_run_*`, `determinism_*`: planning changes nothing; equal trees give equal reports.
//! - `symlink_*`, `root_*`, `mount_*`: nothing outside the root is touched.
//! - `apply_refuses_*`, `plan_errors`: a tree that changed after planning, bad roots.
//! - `real_tree_invariants`: a tree of real Debian packages, when CVMKIT_DEBLOAT_REAL_ROOT names one.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use cvmkit_debloat::{apply, plan, ApplyError, Config, PlanError, Report};

/// `cmd`'s output, bounded in time (the test fails, naming it, if it hangs).
fn output(cmd: &mut Command) -> std::process::Output {
    cvmkit_testutil::output_deadline(cmd, cvmkit_testutil::RUN_TIMEOUT)
}

use cvmkit_testutil::require_tool;

/// One entry of `find`'s view of a tree: type letter (`f`, `d`, `l`, `p`), size, link target.
type Listing = BTreeMap<Vec<u8>, (u8, u64, Vec<u8>)>;

/// Lists `root` with find(1): every entry below it (not the root), keyed by path bytes.
fn listing(root: &Path) -> Listing {
    let out = output(
        Command::new(require_tool("find", "findutils"))
            .arg(root)
            .args(["-mindepth", "1", "-printf", "%P\\0%y\\0%s\\0%l\\0"]),
    );
    assert!(
        out.status.success(),
        "find failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    let mut map = Listing::new();
    for chunk in fields.chunks(4) {
        if chunk.len() < 4 {
            break;
        }
        let size = std::str::from_utf8(chunk[2]).unwrap().parse().unwrap();
        map.insert(chunk[0].to_vec(), (chunk[1][0], size, chunk[3].to_vec()));
    }
    map
}

/// What to create in a fake tree.
enum Node {
    File(u64),
    Dir,
    Link(&'static str),
    /// A link to a host path only known at run time (outside the root).
    LinkTo(PathBuf),
    Fifo,
}
use Node::*;

/// Creates `nodes` under `root` in the order given (parents are created as needed).
fn build(root: &Path, nodes: &[(Vec<u8>, Node)]) {
    for (rel, node) in nodes {
        let path = root.join(OsStr::from_bytes(rel));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match node {
            // Content derived from the path so files differ; the size is what the test asserts.
            File(size) => {
                let byte = rel.iter().fold(0u8, |a, b| a.wrapping_add(*b));
                fs::write(&path, vec![byte; *size as usize]).unwrap();
            }
            Dir => fs::create_dir_all(&path).unwrap(),
            Link(target) => symlink(target, &path).unwrap(),
            LinkTo(target) => symlink(target, &path).unwrap(),
            Fifo => {
                let st =
                    output(Command::new(require_tool("mkfifo", "coreutils")).arg(&path)).status;
                assert!(st.success());
            }
        }
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A name of NAME_MAX (255) bytes, the longest Linux allows.
fn long_name() -> String {
    format!("long-{}.log", "n".repeat(246))
}

/// A small Debian-like root with something for every rule of the default config.
/// `outside` is a directory outside the root that links point to.
fn debian_tree(outside: &Path) -> Vec<(Vec<u8>, Node)> {
    let mut t: Vec<(Vec<u8>, Node)> = vec![
        (b("usr/share/doc/bash/copyright"), File(300)),
        (b("usr/share/doc/bash/changelog.Debian.gz"), File(1000)),
        (b("usr/share/doc/bash/README"), File(500)),
        (b("usr/share/doc/bash/examples/loadables/x.c"), File(200)),
        (b("usr/share/doc/coreutils/copyright"), File(100)),
        (b("usr/share/doc/coreutils/NEWS.gz"), File(2000)),
        (b("usr/share/doc/libc6"), Link("bash")),
        // Links under a removed directory that lead out of the root: removed as links.
        (b("usr/share/doc/linkdir"), LinkTo(outside.to_path_buf())),
        (
            b("usr/share/doc/pointer-out"),
            LinkTo(outside.join("sentinel")),
        ),
        (b("usr/share/man/man1/ls.1.gz"), File(700)),
        (b("usr/share/man/de/man1/ls.1.gz"), File(650)),
        (b("usr/share/info/coreutils.info.gz"), File(3000)),
        (b("usr/share/info/dir"), File(50)),
        (
            b("usr/share/locale/de/LC_MESSAGES/coreutils.mo"),
            File(4000),
        ),
        (
            b("usr/share/locale/fr/LC_MESSAGES/coreutils.mo"),
            File(4100),
        ),
        (b("usr/share/locale/locale.alias"), File(2996)),
        (b("usr/share/i18n/charmaps/UTF-8.gz"), File(900)),
        (b("usr/share/zoneinfo/Etc/UTC"), File(114)),
        (b("usr/share/zoneinfo/UTC"), Link("Etc/UTC")),
        (b("usr/share/zoneinfo/Europe/Berlin"), File(705)),
        (b("usr/share/zoneinfo/Europe/Paris"), File(1000)),
        (b("usr/share/zoneinfo/zone.tab"), File(400)),
        (
            b("etc/localtime"),
            Link("/usr/share/zoneinfo/Europe/Berlin"),
        ),
        (b("etc/timezone-utc"), Link("../usr/share/zoneinfo/UTC")),
        (b("etc/bash_completion"), File(45)),
        (b("usr/share/bash-completion/bash_completion"), File(7000)),
        (b("usr/share/bash-completion/completions/apt"), File(300)),
        (b("usr/bin/ls"), File(1400)),
        (b("usr/bin/man"), File(1240)),
        (b("usr/bin/whatis"), File(520)),
        (b("usr/bin/apropos"), Link("whatis")),
        (b("usr/bin/readme"), Link("../share/doc/bash/README")),
        // Escapes the root when followed naively; inside the root it resolves to nothing.
        (
            b("usr/bin/escape"),
            Link("../../../../../../../outside/sentinel"),
        ),
        (b("usr/include/stdio.h"), File(900)),
        (b("usr/include/sys/types.h"), File(400)),
        (b("usr/lib/x86_64-linux-gnu/libc.a"), File(50000)),
        (b("usr/lib/x86_64-linux-gnu/libc.so.6"), File(20000)),
        (b("usr/lib/x86_64-linux-gnu/libz.la"), File(100)),
        (b("usr/lib/x86_64-linux-gnu/libz.so.1"), File(1000)),
        (b("usr/lib/x86_64-linux-gnu/libz.so"), Link("libz.so.1")),
        (b("usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc"), File(250)),
        (b("usr/share/pkgconfig/bash-completion.pc"), File(100)),
        (b("usr/lib/python3.11/os.py"), File(1000)),
        (
            b("usr/lib/python3.11/__pycache__/os.cpython-311.pyc"),
            File(3000),
        ),
        (b("usr/lib/python3/dist-packages/foo/__init__.py"), File(10)),
        (
            b("usr/lib/python3/dist-packages/foo/__pycache__/__init__.cpython-311.pyc"),
            File(300),
        ),
        // A symlinked directory: `/**/__pycache__` must not reach outside/__pycache__ through it.
        (b("usr/lib/python3.11/ext"), LinkTo(outside.to_path_buf())),
        (b("var/cache/apt/pkgcache.bin"), File(10000)),
        (b("var/cache/apt/archives/partial"), Dir),
        (b("var/cache/apt/archives/bash_5.2_amd64.deb"), File(5000)),
        (b("var/cache/debconf/config.dat"), File(800)),
        (b("var/cache/debconf/config.dat-old"), File(790)),
        (b("var/cache/debconf/templates.dat"), File(1200)),
        (
            b("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"),
            File(20000),
        ),
        (b("var/lib/apt/lists/partial"), Dir),
        (b("var/lib/apt/lists/lock"), File(0)),
        (b("var/lib/dpkg/status"), File(3000)),
        (b("var/lib/dpkg/status-old"), File(2990)),
        (b("var/lib/dpkg/info/bash.list"), File(400)),
        (b("var/lib/dpkg/info/bash.md5sums"), File(300)),
        (b("var/log/dpkg.log"), File(1500)),
        (b("var/log/apt/history.log"), File(600)),
        (b("var/log/journal"), Dir),
        (b("var/log/initctl"), Fifo),
        // Awkward names, where each removed file is listed on its own (the directory stays).
        (b"var/log/\xff\xfe-not-utf8.log".to_vec(), File(77)),
        (b("var/log/new\nline.log"), File(33)),
        (b("var/log/sp ace [x]*?.log"), File(11)),
        (b("var/log/back\\slash.log"), File(12)),
        (b("var/log/-dash.log"), File(5)),
        (b(&format!("var/log/{}", long_name())), File(9)),
        (b("var/log/ünïcödé.log"), File(13)),
        (b("opt/app/bin/app"), File(4321)),
    ];
    t.push((b("opt/app/data"), Dir));
    t
}

/// The sentinel directory outside the root: links in the root point at it.
fn make_outside(dir: &Path) -> PathBuf {
    let outside = dir.join("outside");
    fs::create_dir_all(outside.join("__pycache__")).unwrap();
    fs::write(outside.join("sentinel"), b"must survive").unwrap();
    fs::write(outside.join("__pycache__/x.pyc"), b"must survive too").unwrap();
    outside
}

/// What the default config must remove from `debian_tree`, per rule, every entry.
fn expected_removals() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let s = |v: &[&str]| v.iter().map(|p| b(p)).collect::<Vec<_>>();
    vec![
        (
            "docs",
            s(&[
                "usr/share/doc/bash/README",
                "usr/share/doc/bash/changelog.Debian.gz",
                "usr/share/doc/bash/examples",
                "usr/share/doc/bash/examples/loadables",
                "usr/share/doc/bash/examples/loadables/x.c",
                "usr/share/doc/coreutils/NEWS.gz",
                "usr/share/doc/libc6",
                "usr/share/doc/linkdir",
                "usr/share/doc/pointer-out",
                "usr/share/info",
                "usr/share/info/coreutils.info.gz",
                "usr/share/info/dir",
                "usr/share/man",
                "usr/share/man/de",
                "usr/share/man/de/man1",
                "usr/share/man/de/man1/ls.1.gz",
                "usr/share/man/man1",
                "usr/share/man/man1/ls.1.gz",
            ]),
        ),
        (
            "man-db",
            s(&["usr/bin/apropos", "usr/bin/man", "usr/bin/whatis"]),
        ),
        (
            "locales",
            s(&[
                "usr/share/locale/de",
                "usr/share/locale/de/LC_MESSAGES",
                "usr/share/locale/de/LC_MESSAGES/coreutils.mo",
                "usr/share/locale/fr",
                "usr/share/locale/fr/LC_MESSAGES",
                "usr/share/locale/fr/LC_MESSAGES/coreutils.mo",
            ]),
        ),
        (
            "i18n",
            s(&[
                "usr/share/i18n",
                "usr/share/i18n/charmaps",
                "usr/share/i18n/charmaps/UTF-8.gz",
            ]),
        ),
        (
            "zoneinfo",
            s(&[
                "usr/share/zoneinfo/Europe",
                "usr/share/zoneinfo/Europe/Berlin",
                "usr/share/zoneinfo/Europe/Paris",
                "usr/share/zoneinfo/zone.tab",
            ]),
        ),
        (
            "shell-completion",
            s(&[
                "etc/bash_completion",
                "usr/share/bash-completion",
                "usr/share/bash-completion/bash_completion",
                "usr/share/bash-completion/completions",
                "usr/share/bash-completion/completions/apt",
            ]),
        ),
        (
            "headers",
            s(&[
                "usr/include",
                "usr/include/stdio.h",
                "usr/include/sys",
                "usr/include/sys/types.h",
            ]),
        ),
        (
            "static-libs",
            s(&[
                "usr/lib/x86_64-linux-gnu/libc.a",
                "usr/lib/x86_64-linux-gnu/libz.la",
            ]),
        ),
        (
            "pkg-config",
            s(&[
                "usr/lib/x86_64-linux-gnu/pkgconfig",
                "usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc",
                "usr/share/pkgconfig",
                "usr/share/pkgconfig/bash-completion.pc",
            ]),
        ),
        (
            "python-bytecode",
            s(&[
                "usr/lib/python3.11/__pycache__",
                "usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
                "usr/lib/python3/dist-packages/foo/__pycache__",
                "usr/lib/python3/dist-packages/foo/__pycache__/__init__.cpython-311.pyc",
            ]),
        ),
        (
            "caches",
            s(&[
                "var/cache/apt/archives/bash_5.2_amd64.deb",
                "var/cache/apt/pkgcache.bin",
                "var/cache/debconf/config.dat-old",
            ]),
        ),
        (
            "package-lists",
            s(&[
                "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
                "var/lib/apt/lists/lock",
                "var/lib/dpkg/status-old",
            ]),
        ),
        ("logs", {
            let mut v = s(&[
                "var/log/-dash.log",
                "var/log/apt/history.log",
                "var/log/back\\slash.log",
                "var/log/dpkg.log",
                "var/log/initctl",
                "var/log/new\nline.log",
                "var/log/sp ace [x]*?.log",
                "var/log/ünïcödé.log",
            ]);
            v.push(b"var/log/\xff\xfe-not-utf8.log".to_vec());
            v.push(b(&format!("var/log/{}", long_name())));
            v
        }),
    ]
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Bytes of the regular files among `paths`, read from a `find` listing.
fn find_bytes(before: &Listing, paths: &[Vec<u8>]) -> u64 {
    paths
        .iter()
        .map(|p| match &before[p] {
            (b'f', size, _) => *size,
            _ => 0,
        })
        .sum()
}

fn count_kind(before: &Listing, paths: &[Vec<u8>], kind: u8) -> u64 {
    paths.iter().filter(|p| before[*p].0 == kind).count() as u64
}

#[test]
fn default_config_removes_exactly_the_expected_entries() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let outside_before = listing(&outside);
    let root = tmp.path().join("root");
    build(&root, &debian_tree(&outside));
    let before = listing(&root);

    let config = Config::default_config();
    let p = plan(&root, &config).unwrap();
    let dry = p.report();
    let expected = expected_removals();

    // The plan: per rule, exactly the expected entries, in path order.
    let names: Vec<&str> = config
        .remove_rules()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    for (rule, paths) in &expected {
        let idx = names.iter().position(|n| n == rule).unwrap();
        let mut got: Vec<Vec<u8>> = p
            .removals()
            .iter()
            .filter(|e| e.rule == idx)
            .map(|e| e.path.as_os_str().as_bytes().to_vec())
            .collect();
        let mut want = paths.clone();
        want.sort_by(|a, b| Path::new(OsStr::from_bytes(a)).cmp(Path::new(OsStr::from_bytes(b))));
        // The plan already lists in path order; sorting `got` too would hide a wrong order.
        assert_eq!(
            got.iter()
                .map(|g| String::from_utf8_lossy(g).into_owned())
                .collect::<Vec<_>>(),
            want.iter()
                .map(|g| String::from_utf8_lossy(g).into_owned())
                .collect::<Vec<_>>(),
            "rule {rule}"
        );
        got.sort();

        // The report's numbers, against sizes and kinds find(1) saw.
        let r = dry.rules.iter().find(|r| r.name == *rule).unwrap();
        assert_eq!(
            r.counts.bytes,
            find_bytes(&before, paths),
            "bytes of {rule}"
        );
        assert_eq!(
            r.counts.files,
            count_kind(&before, paths, b'f'),
            "files of {rule}"
        );
        assert_eq!(
            r.counts.dirs,
            count_kind(&before, paths, b'd'),
            "dirs of {rule}"
        );
        assert_eq!(
            r.counts.links,
            count_kind(&before, paths, b'l'),
            "links of {rule}"
        );
        assert_eq!(
            r.counts.other,
            count_kind(&before, paths, b'p'),
            "other of {rule}"
        );
    }
    // No rule removes anything beyond the expected lists.
    let all_expected: BTreeSet<Vec<u8>> = expected.iter().flat_map(|(_, v)| v.clone()).collect();
    assert_eq!(p.removals().len(), all_expected.len());
    let total_bytes: u64 = find_bytes(&before, &all_expected.iter().cloned().collect::<Vec<_>>());
    assert_eq!(dry.total.bytes, total_bytes);
    // The same sum by hand, rule by rule, from the sizes written in `debian_tree`.
    let by_hand = (1000 + 500 + 200 + 2000 + 3000 + 50 + 700 + 650) // docs
        + (1240 + 520) // man-db
        + (4000 + 4100) // locales
        + 900 // i18n
        + (705 + 1000 + 400) // zoneinfo
        + (45 + 7000 + 300) // shell-completion
        + (900 + 400) // headers
        + (50000 + 100) // static-libs
        + (250 + 100) // pkg-config
        + (3000 + 300) // python-bytecode
        + (10000 + 5000 + 790) // caches
        + (20000 + 2990) // package-lists
        + (1500 + 600 + 77 + 33 + 11 + 12 + 5 + 9 + 13); // logs
    assert_eq!(dry.total.bytes, by_hand);
    assert_eq!(dry.total.entries(), all_expected.len() as u64);
    assert!(dry.dry_run);

    // The report lists the topmost removed paths, escaped, sorted.
    let docs = &dry.rules[0];
    assert_eq!(
        docs.paths,
        [
            "/usr/share/doc/bash/README",
            "/usr/share/doc/bash/changelog.Debian.gz",
            "/usr/share/doc/bash/examples",
            "/usr/share/doc/coreutils/NEWS.gz",
            "/usr/share/doc/libc6",
            "/usr/share/doc/linkdir",
            "/usr/share/doc/pointer-out",
            "/usr/share/info",
            "/usr/share/man",
        ]
    );
    let logs = dry.rules.iter().find(|r| r.name == "logs").unwrap();
    assert_eq!(
        logs.paths,
        [
            "/var/log/-dash.log".to_owned(),
            "/var/log/apt/history.log".into(),
            "/var/log/back\\\\slash.log".into(),
            "/var/log/dpkg.log".into(),
            "/var/log/initctl".into(),
            format!("/var/log/{}", long_name()),
            "/var/log/new\\x0aline.log".into(),
            "/var/log/sp ace [x]*?.log".into(),
            // Sorted as bytes: UTF-8 (0xc3…) before the stray 0xff.
            "/var/log/ünïcödé.log".into(),
            "/var/log/\\xff\\xfe-not-utf8.log".into(),
        ]
    );

    // Keep rules: what they saved from removal.
    let kept: BTreeMap<&str, &Vec<String>> = dry
        .kept
        .iter()
        .map(|k| (k.name.as_str(), &k.paths))
        .collect();
    assert_eq!(
        kept["copyright"],
        &[
            "/usr/share/doc/bash/copyright",
            "/usr/share/doc/coreutils/copyright"
        ]
    );
    assert_eq!(kept["locale-alias"], &["/usr/share/locale/locale.alias"]);
    assert_eq!(
        kept["debconf-db"],
        &[
            "/var/cache/debconf/config.dat",
            "/var/cache/debconf/templates.dat"
        ]
    );
    assert_eq!(
        kept["utc"],
        &["/usr/share/zoneinfo/Etc", "/usr/share/zoneinfo/UTC"]
    );
    let utc = dry.kept.iter().find(|k| k.name == "utc").unwrap();
    assert_eq!(
        (
            utc.counts.files,
            utc.counts.dirs,
            utc.counts.links,
            utc.counts.bytes
        ),
        (1, 1, 1, 114)
    );

    // Links left dangling by the removal, with the rule responsible; links that were already
    // dangling (usr/bin/escape) or still resolve (etc/timezone-utc, libz.so) are not listed.
    let dangling: Vec<(&str, &str, &str)> = dry
        .dangling
        .iter()
        .map(|d| (d.link.as_str(), d.target.as_str(), d.rule.as_str()))
        .collect();
    assert_eq!(
        dangling,
        [
            (
                "/etc/localtime",
                "/usr/share/zoneinfo/Europe/Berlin",
                "zoneinfo"
            ),
            ("/usr/bin/readme", "../share/doc/bash/README", "docs"),
        ]
    );

    // Planning changed nothing.
    assert_eq!(listing(&root), before);

    // Apply: the same report, and find(1) sees exactly the expected entries gone.
    let done = apply(&root, &p).unwrap();
    assert!(!done.dry_run);
    let mut as_dry = done.clone();
    as_dry.dry_run = true;
    assert_eq!(as_dry, dry);
    let after = listing(&root);
    let gone: BTreeSet<Vec<u8>> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(gone, all_expected);
    assert!(after.keys().all(|k| before.contains_key(k)));
    // Directories that held kept files, and directories a files-only rule emptied, stay.
    for dir in [
        "usr/share/doc/bash",
        "usr/share/locale",
        "var/cache/apt/archives/partial",
        "var/log/journal",
        "var/lib/apt/lists/partial",
    ] {
        assert_eq!(after[dir.as_bytes()].0, b'd', "{dir}");
    }
    // Nothing outside the root was touched.
    assert_eq!(listing(&outside), outside_before);
    assert_eq!(fs::read(outside.join("sentinel")).unwrap(), b"must survive");

    // A second run finds nothing more to remove.
    let again = plan(&root, &config).unwrap();
    assert!(again.removals().is_empty());
}

#[test]
fn report_json_shape() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let root = tmp.path().join("root");
    build(&root, &debian_tree(&outside));
    let report = plan(&root, &Config::default_config()).unwrap().report();
    let json = serde_json::to_value(&report).unwrap();
    let docs = &json["rules"][0];
    assert_eq!(docs["name"], "docs");
    for key in ["files", "dirs", "links", "other", "bytes"] {
        assert!(docs[key].is_u64(), "{key}");
        assert!(json["total"][key].is_u64(), "{key}");
    }
    assert!(json["dry_run"].as_bool().unwrap());
    assert!(json["kept"].is_array() && json["dangling"].is_array());
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
    // The table for people names every rule and the total.
    let text = report.to_string();
    assert!(text.lines().any(|l| l.starts_with("total ")), "{text}");
    assert!(
        text.contains("warning: /etc/localtime -> /usr/share/zoneinfo/Europe/Berlin dangles"),
        "{text}"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let root = tmp.path().join("root");
    build(&root, &debian_tree(&outside));
    // Compare modification times too: planning must not even write into a directory.
    let stat = |root: &Path| {
        let out = output(
            Command::new(require_tool("find", "findutils"))
                .arg(root)
                .args(["-printf", "%P %y %s %m %T@ %l\\0"]),
        );
        out.stdout
    };
    let before = stat(&root);
    let p = plan(&root, &Config::default_config()).unwrap();
    let r1 = p.report();
    let r2 = plan(&root, &Config::default_config()).unwrap().report();
    assert_eq!(r1, r2);
    assert!(r1.total.bytes > 0);
    assert_eq!(stat(&root), before);
}

#[test]
fn determinism_across_creation_order() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let (a, b_) = (tmp.path().join("a"), tmp.path().join("b"));
    let nodes = debian_tree(&outside);
    build(&a, &nodes);
    // The same tree created in reverse order, so read_dir returns entries differently.
    let mut reversed = debian_tree(&outside);
    reversed.reverse();
    build(&b_, &reversed);
    assert_eq!(listing(&a), listing(&b_));

    let config = Config::default_config();
    let (pa, pb) = (plan(&a, &config).unwrap(), plan(&b_, &config).unwrap());
    assert_eq!(pa, pb);
    let ja = serde_json::to_string(&pa.report()).unwrap();
    let jb = serde_json::to_string(&pb.report()).unwrap();
    assert_eq!(ja, jb);
    let (ra, rb) = (apply(&a, &pa).unwrap(), apply(&b_, &pb).unwrap());
    assert_eq!(
        serde_json::to_string(&ra).unwrap(),
        serde_json::to_string(&rb).unwrap()
    );
    assert_eq!(listing(&a), listing(&b_));
}

fn config(text: &str) -> Config {
    Config::parse(text, "test.toml").unwrap()
}

#[test]
fn keep_wins_and_first_rule_claims() {
    let tmp = tempdir();
    let root = tmp.path();
    build(
        root,
        &[
            (b("opt/tool/bin/tool"), File(100)),
            (b("opt/tool/lib/x.pyc"), File(10)),
            (b("opt/tool/share/licenses/LICENSE"), File(20)),
            (b("opt/tool/share/licenses/sub/NOTICE"), File(30)),
            (b("opt/tool/share/readme"), File(40)),
            (b("srv/y.pyc"), File(5)),
        ],
    );
    let c = config(
        r#"
        [[remove]]
        name = "bytecode"
        paths = ["/**/*.pyc"]

        [[remove]]
        name = "tool"
        paths = ["/opt/tool"]

        [[keep]]
        name = "licenses"
        paths = ["/opt/tool/share/licenses"]
        "#,
    );
    let p = plan(root, &c).unwrap();
    let r = p.report();
    // x.pyc is inside /opt/tool but the earlier rule claims it.
    assert_eq!(r.rules[0].paths, ["/opt/tool/lib/x.pyc", "/srv/y.pyc"]);
    assert_eq!((r.rules[0].counts.files, r.rules[0].counts.bytes), (2, 15));
    // /opt/tool, /opt/tool/share stay (they hold kept entries); lib goes whole.
    assert_eq!(
        r.rules[1].paths,
        ["/opt/tool/bin", "/opt/tool/lib", "/opt/tool/share/readme"]
    );
    assert_eq!(
        (
            r.rules[1].counts.files,
            r.rules[1].counts.dirs,
            r.rules[1].counts.bytes
        ),
        (2, 2, 140)
    );
    // The keep rule saved the directory and everything in it.
    assert_eq!(r.kept[0].paths, ["/opt/tool/share/licenses"]);
    assert_eq!(
        (
            r.kept[0].counts.files,
            r.kept[0].counts.dirs,
            r.kept[0].counts.bytes
        ),
        (2, 2, 50)
    );
    apply(root, &p).unwrap();
    let left: Vec<String> = listing(root)
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        left,
        [
            "opt",
            "opt/tool",
            "opt/tool/share",
            "opt/tool/share/licenses",
            "opt/tool/share/licenses/LICENSE",
            "opt/tool/share/licenses/sub",
            "opt/tool/share/licenses/sub/NOTICE",
            "srv",
        ]
    );
}

#[test]
fn types_limit_what_globs_match() {
    let tmp = tempdir();
    let root = tmp.path();
    build(
        root,
        &[
            (b("var/log/a.log"), File(1)),
            (b("var/log/nginx/access.log"), File(2)),
            (b("var/log/old"), Link("a.log")),
            (b("data/x.a/inner"), File(3)),
            (b("data/y.a"), File(4)),
        ],
    );
    let c = config(
        r#"
        [[remove]]
        name = "logs"
        paths = ["/var/log/**"]
        types = ["file"]

        [[remove]]
        name = "archives"
        paths = ["/**/*.a"]
        types = ["file", "link"]
        "#,
    );
    let r = apply(root, &plan(root, &c).unwrap()).unwrap();
    assert_eq!(
        r.rules[0].paths,
        ["/var/log/a.log", "/var/log/nginx/access.log"]
    );
    assert_eq!(r.rules[1].paths, ["/data/y.a"]);
    assert!(root.join("var/log/nginx").is_dir());
    assert!(root.join("var/log/old").symlink_metadata().is_ok());
    assert!(root.join("data/x.a/inner").is_file());
}

#[test]
fn symlinked_directories_are_never_entered() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let before = listing(&outside);
    let root = tmp.path().join("root");
    build(
        &root,
        &[
            (b("opt/data"), LinkTo(outside.clone())),
            (b("opt/rel"), Link("../../outside")),
            (b("usr/lib/python3/ext"), LinkTo(outside.clone())),
            (b("usr/lib/python3/os.py"), File(1)),
        ],
    );
    // Rules that would empty the outside directory if the walk followed links.
    let c = config(
        r#"
        [[remove]]
        name = "through-link"
        paths = ["/opt/data/**", "/opt/rel/**", "/**/__pycache__", "/**/sentinel"]
        "#,
    );
    let p = plan(&root, &c).unwrap();
    assert!(p.removals().is_empty(), "{:?}", p.removals());
    apply(&root, &p).unwrap();
    // Now remove the links themselves: only the links go.
    let c = config(
        r#"
        [[remove]]
        name = "links"
        paths = ["/opt/*", "/usr/lib/python3/ext"]
        "#,
    );
    let r = apply(&root, &plan(&root, &c).unwrap()).unwrap();
    assert_eq!(
        (r.total.links, r.total.files, r.total.dirs, r.total.bytes),
        (3, 0, 0, 0)
    );
    assert_eq!(listing(&outside), before);
    assert!(root.join("usr/lib/python3/os.py").exists());
}

#[test]
fn root_is_never_removed_and_may_be_a_symlink() {
    let tmp = tempdir();
    let real = tmp.path().join("real");
    build(&real, &[(b("a/b"), File(7)), (b("c"), Link("/"))]);
    let via = tmp.path().join("via-link");
    symlink(&real, &via).unwrap();
    let c = config("[[remove]]\nname = \"all\"\npaths = [\"/**\"]\n");
    let r = apply(&via, &plan(&via, &c).unwrap()).unwrap();
    assert_eq!(
        (r.total.files, r.total.dirs, r.total.links, r.total.bytes),
        (1, 1, 1, 7)
    );
    assert!(real.is_dir());
    assert!(listing(&real).is_empty());
    assert!(tmp
        .path()
        .join("via-link")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn apply_refuses_a_tree_that_changed() {
    let tmp = tempdir();
    let outside = make_outside(tmp.path());
    let outside_before = listing(&outside);
    let root = tmp.path().join("root");
    let c = config("[[remove]]\nname = \"docs\"\npaths = [\"/usr/share/doc/**\"]\n");

    // A planned file replaced by a directory.
    build(&root, &[(b("usr/share/doc/a"), File(1))]);
    let p = plan(&root, &c).unwrap();
    fs::remove_file(root.join("usr/share/doc/a")).unwrap();
    fs::create_dir(root.join("usr/share/doc/a")).unwrap();
    let e = apply(&root, &p).unwrap_err();
    assert!(matches!(e, ApplyError::Changed { .. }), "{e}");
    assert!(e.to_string().ends_with("usr/share/doc/a' was a file when the plan was made but is now a dir; make the plan again"), "{e}");

    // A directory on the way swapped for a symlink to outside the root: refused, not followed.
    fs::remove_dir_all(&root).unwrap();
    build(&root, &[(b("usr/share/doc/pkg/sentinel"), File(1))]);
    let p = plan(&root, &c).unwrap();
    fs::remove_dir_all(root.join("usr/share/doc/pkg")).unwrap();
    symlink(&outside, root.join("usr/share/doc/pkg")).unwrap();
    let e = apply(&root, &p).unwrap_err();
    assert!(matches!(e, ApplyError::NotADirectory { .. }), "{e}");
    assert_eq!(listing(&outside), outside_before);

    // A planned directory that gained a file: rmdir fails and says so; the file survives.
    fs::remove_dir_all(&root).unwrap();
    build(&root, &[(b("usr/share/doc/pkg/x"), File(1))]);
    let p = plan(&root, &c).unwrap();
    fs::write(root.join("usr/share/doc/pkg/new"), b"late").unwrap();
    let e = apply(&root, &p).unwrap_err();
    assert!(matches!(e, ApplyError::Io { .. }), "{e}");
    assert!(
        e.to_string().starts_with("cannot remove '")
            && e.to_string().ends_with("usr/share/doc/pkg'"),
        "{e}"
    );
    assert!(root.join("usr/share/doc/pkg/new").exists());
}

#[test]
fn plan_errors() {
    let tmp = tempdir();
    let c = Config::default_config();
    let missing = tmp.path().join("nope");
    let e = plan(&missing, &c).unwrap_err();
    assert!(matches!(e, PlanError::NotADirectory { .. }));
    assert!(
        e.to_string().ends_with(
            "nope' is not a directory; pass the directory holding the unpacked root file system"
        ),
        "{e}"
    );
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        plan(&file, &c),
        Err(PlanError::NotADirectory { .. })
    ));
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = cvmkit_testutil::output_deadline(
            Command::new(require_tool("umount", "mount")).arg(&self.0),
            std::time::Duration::from_secs(60),
        );
    }
}

/// Mounts a tmpfs: run as root with `--include-ignored`.
#[test]
#[ignore = "needs root"]
fn mount_points_are_not_entered() {
    let tmp = tempdir();
    let root = tmp.path().join("root");
    build(&root, &[(b("proc"), Dir), (b("usr/share/doc/x"), File(1))]);
    let out = output(
        Command::new(require_tool("mount", "mount"))
            .args(["-t", "tmpfs", "none"])
            .arg(root.join("proc")),
    );
    assert!(
        out.status.success(),
        "cannot mount a tmpfs (this test needs root and CAP_SYS_ADMIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _guard = Mount(root.join("proc"));
    fs::create_dir(root.join("proc/__pycache__")).unwrap();
    let c =
        config("[[remove]]\nname = \"pyc\"\npaths = [\"/**/__pycache__\", \"/usr/share/doc\"]\n");
    let p = plan(&root, &c).unwrap();
    assert_eq!(p.report().rules[0].paths, ["/usr/share/doc"]);
    let c = config("[[remove]]\nname = \"proc\"\npaths = [\"/proc\"]\n");
    let e = plan(&root, &c).unwrap_err();
    assert!(e.to_string().ends_with("proc' is a mount point and rule 'proc' would remove it; unmount it, or keep it with a [[keep]] rule"), "{e}");
}

/// Invariants on a real tree of unpacked Debian packages: `$CVMKIT_DEBLOAT_REAL_ROOT`, else the
/// package the example input BUSYBOX was unpacked from (scripts/fetch-inputs.sh unpacks
/// busybox-static so that BUSYBOX is `<package>/bin/busybox`). The tree is copied first, since
/// applying changes it. Ignored by default (the flake's sandbox has no such tree); run it with
/// `--include-ignored`, where a missing tree fails.
#[test]
#[ignore = "needs a real unpacked package tree (CVMKIT_DEBLOAT_REAL_ROOT, or the BUSYBOX input)"]
fn real_tree_invariants() {
    let src = match std::env::var_os("CVMKIT_DEBLOAT_REAL_ROOT").filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => {
            let busybox = cvmkit_testutil::busybox();
            busybox.parent().and_then(Path::parent).unwrap().to_owned()
        }
    };
    assert!(
        src.join("usr/share/doc").is_dir(),
        "{} is not an unpacked package tree (no usr/share/doc): set CVMKIT_DEBLOAT_REAL_ROOT to one",
        src.display()
    );
    let tmp = tempdir();
    let root = tmp.path().join("root");
    let out = output(
        Command::new(require_tool("cp", "coreutils"))
            .arg("-a")
            .arg(&src)
            .arg(&root),
    );
    assert!(
        out.status.success(),
        "cp -a: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = listing(&root);
    let config = Config::default_config();
    let p = plan(&root, &config).unwrap();
    let dry = p.report();
    assert_eq!(listing(&root), before, "planning changed the tree");
    // Totals add up and match find's sizes for the planned paths.
    let sum = dry.rules.iter().fold(0, |a, r| a + r.counts.bytes);
    assert_eq!(sum, dry.total.bytes);
    let planned: Vec<Vec<u8>> = p
        .removals()
        .iter()
        .map(|e| e.path.as_os_str().as_bytes().to_vec())
        .collect();
    assert_eq!(find_bytes(&before, &planned), dry.total.bytes);
    let done = apply(&root, &p).unwrap();
    assert_eq!(done.total, dry.total);
    let after = listing(&root);
    let gone: BTreeSet<Vec<u8>> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(gone, planned.into_iter().collect::<BTreeSet<_>>());
    // Every package's copyright file (usr/share/doc/PKG/copyright, not deeper) survives.
    let is_copyright = |k: &[u8]| {
        k.starts_with(b"usr/share/doc/")
            && k.ends_with(b"/copyright")
            && k.iter().filter(|&&c| c == b'/').count() == 4
    };
    for (path, _) in before
        .iter()
        .filter(|(k, v)| is_copyright(k) && v.0 == b'f')
    {
        assert!(
            after.contains_key(path),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    eprintln!("{done}");
}

#[test]
fn dangling_links_follow_chains_inside_the_root() {
    let tmp = tempdir();
    let root = tmp.path();
    build(
        root,
        &[
            (b("real/file"), File(3)),
            // Reaches real/file through a link that the rule removes.
            (b("via"), Link("hop/file")),
            (b("hop"), Link("/real")),
            // Loops and links escaping with `..` resolve to nothing and are not reported.
            (b("loop1"), Link("loop2")),
            (b("loop2"), Link("loop1")),
            (b("up"), Link("../../../../real/file")),
            (b("kept-dir/x"), Link("/real/file")),
        ],
    );
    let c = config(
        r#"
        [[remove]]
        name = "hop"
        paths = ["/hop"]
        "#,
    );
    let r = plan(root, &c).unwrap().report();
    let d: Vec<(&str, &str, &str)> = r
        .dangling
        .iter()
        .map(|d| (d.link.as_str(), d.target.as_str(), d.rule.as_str()))
        .collect();
    assert_eq!(d, [("/via", "hop/file", "hop")]);
    // `..` stops at the root, as in a chroot: /up resolves to /real/file, which stays.
    let c = config("[[remove]]\nname = \"real\"\npaths = [\"/real/file\"]\n");
    let r = plan(root, &c).unwrap().report();
    let links: Vec<&str> = r.dangling.iter().map(|d| d.link.as_str()).collect();
    assert_eq!(links, ["/kept-dir/x", "/up", "/via"]);
}
