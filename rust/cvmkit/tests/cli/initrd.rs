use std::process::Command;

use crate::util::*;

fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let out = cvmkit_testutil::output_with_stdin(cmd, input, cvmkit_testutil::RUN_TIMEOUT);
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// GNU cpio (an independent reader) lists what the tree + spec should give: spec device nodes,
/// modes and symlinks, normalized tree modes, uid/gid 0, and SOURCE_DATE_EPOCH as every mtime.
#[test]
fn example_initrd_lists_with_gnu_cpio() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let out = tmp.path().join("initrd.cpio");
    run(
        cvmkit(tmp.path())
            .env("SOURCE_DATE_EPOCH", "86400")
            .arg("initrd")
            .arg(&root)
            .arg("--spec")
            .arg(example_file("initrd.spec"))
            .arg("-o")
            .arg(&out),
        true,
    );
    let data = std::fs::read(&out).unwrap();
    let listing = pipe(
        Command::new(require_tool("cpio")).args(["-t", "-v", "--quiet", "--numeric-uid-gid"]).env("TZ", "UTC").env("LC_ALL", "C"),
        &data,
    );
    let listing = String::from_utf8(listing).unwrap();
    let find = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{listing}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let console = find("dev/console");
    assert_eq!(console[0], "crw-------");
    assert_eq!(&console[2..6], ["0", "0", "5,", "1"]);
    assert_eq!(find("tmp")[0], "drwxrwxrwt");
    assert_eq!(find("init")[0], "-rwxr-xr-x");
    assert_eq!(find("bin/busybox")[0], "-rwxr-xr-x");
    let sh = find("bin/sh");
    assert!(sh[0].starts_with('l') && sh.ends_with(&["->", "busybox"]), "{sh:?}");
    // Every entry carries 1970-01-02 (SOURCE_DATE_EPOCH=86400).
    for l in listing.lines() {
        assert!(l.contains("Jan  2  1970"), "{l}");
    }
    // Entries come bytewise sorted, parents first.
    let names: Vec<&str> = listing.lines().map(|l| l.split(" -> ").next().unwrap().rsplit(' ').next().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

/// gzip and zstd outputs decompress, with the reference tools, to exactly the uncompressed archive.
#[test]
fn compressed_outputs_hold_the_same_archive() {
    let inputs = inputs();
    let tmp = tempfile::tempdir().unwrap();
    let root = stage_example_root(tmp.path(), &inputs);
    let build = |compress: &str| {
        let out = tmp.path().join(format!("initrd.{compress}"));
        run(cvmkit(tmp.path()).arg("initrd").arg(&root).args(["--compress", compress, "-o"]).arg(&out), true);
        std::fs::read(out).unwrap()
    };
    let plain = build("none");
    let gz = build("gzip");
    let zst = build("zstd");
    assert_eq!(&gz[..2], [0x1f, 0x8b]);
    assert_eq!(&zst[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    // busybox dominates the tree and compresses to about half.
    assert!(gz.len() < plain.len() * 7 / 10 && zst.len() < plain.len() * 7 / 10);
    assert_eq!(pipe(Command::new(require_tool("gzip")).arg("-dc"), &gz), plain);
    assert_eq!(pipe(Command::new(require_tool("zstd")).args(["-dc", "-q"]), &zst), plain);
}

/// Several ROOTs merge in order (a later tree's file replaces an earlier one's) and several
/// `--spec` files apply in order after the trees; GNU cpio reads back the winners.
#[test]
fn several_roots_and_specs_merge_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (root, text) in [("a", "from a\n"), ("b", "from b\n")] {
        std::fs::create_dir_all(d.join(root).join("etc")).unwrap();
        std::fs::write(d.join(root).join("etc/x"), text).unwrap();
        std::fs::write(d.join(root).join(format!("only-{root}")), root).unwrap();
    }
    std::fs::write(d.join("one.spec"), "dir /srv 0700 0 0\nslink /link only-a 0777 0 0\n").unwrap();
    std::fs::write(d.join("two.spec"), "dir /srv 0750 1 2\n").unwrap();
    let out = d.join("initrd.cpio");
    run(
        cvmkit(d).args(["initrd", "a", "b", "--spec", "one.spec", "--spec", "two.spec", "-o"]).arg(&out),
        true,
    );
    let data = std::fs::read(&out).unwrap();
    let listing = String::from_utf8(pipe(
        Command::new(require_tool("cpio")).args(["-t", "-v", "--quiet", "--numeric-uid-gid"]).env("LC_ALL", "C"),
        &data,
    ))
    .unwrap();
    for name in ["etc/x", "only-a", "only-b", "link -> only-a"] {
        assert!(listing.lines().any(|l| l.ends_with(&format!(" {name}"))), "{name} missing:\n{listing}");
    }
    let srv: Vec<&str> = listing.lines().find(|l| l.ends_with(" srv")).unwrap().split_whitespace().collect();
    assert_eq!(&srv[..4], ["drwxr-x---", "2", "1", "2"], "the second spec's srv wins");
    let x = pipe(Command::new(require_tool("cpio")).args(["-i", "--quiet", "--to-stdout", "etc/x"]), &data);
    assert_eq!(x, b"from b\n");
}
