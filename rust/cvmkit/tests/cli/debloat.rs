use std::process::Command;

use crate::util::*;

fn listing(root: &std::path::Path) -> String {
    stdout(&run(Command::new("find").arg(root).args(["-printf", "%P %y %s %T@\n"]).env("LC_ALL", "C"), true))
}

/// `cvmkit debloat` with a custom config: --dry-run changes nothing and reports the bytes that the
/// real run then removes; the removed set equals what `find` shows is gone; keep-rules hold.
#[test]
fn debloat_dry_run_then_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for (path, size) in [
        ("usr/share/doc/pkg/README", 1000usize),
        ("usr/share/doc/pkg/copyright", 300),
        ("usr/share/man/man1/ls.1.gz", 2000),
        ("usr/lib/libx.a", 5000),
        ("usr/bin/app", 700),
        ("var/cache/apt/pkgcache.bin", 4096),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![b'x'; size]).unwrap();
    }
    std::fs::write(
        tmp.path().join("rules.toml"),
        r#"
[[remove]]
name = "docs"
paths = ["/usr/share/doc/**", "/usr/share/man"]
[[remove]]
name = "static"
paths = ["/usr/lib/*.a"]
[[remove]]
name = "caches"
paths = ["/var/cache/**"]
types = ["file"]
[[keep]]
name = "copyright"
paths = ["/usr/share/doc/*/copyright"]
"#,
    )
    .unwrap();
    let before = listing(&root);
    let dry = run(cvmkit(tmp.path()).args(["debloat", "--config", "rules.toml", "--dry-run", "--json", "root"]), true);
    assert_eq!(listing(&root), before, "--dry-run changed the tree");
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let bytes = |r: &serde_json::Value, name: &str| r["rules"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap()["bytes"].clone();
    // Sizes written above: README 1000 + ls.1.gz 2000 under docs; libx.a 5000; pkgcache.bin 4096.
    assert_eq!(bytes(&dry, "docs"), 3000);
    assert_eq!(bytes(&dry, "static"), 5000);
    assert_eq!(bytes(&dry, "caches"), 4096);
    let real = run(cvmkit(tmp.path()).args(["debloat", "--config", "rules.toml", "--json", "root"]), true);
    let real: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(real["total"], dry["total"]);
    let after = listing(&root);
    let mut gone: Vec<&str> = before.lines().filter(|l| !after.lines().any(|a| a.split(' ').next() == l.split(' ').next())).map(|l| l.split(' ').next().unwrap()).collect();
    gone.sort();
    assert_eq!(gone, ["usr/lib/libx.a", "usr/share/doc/pkg/README", "usr/share/man", "usr/share/man/man1", "usr/share/man/man1/ls.1.gz", "var/cache/apt/pkgcache.bin"]);
    assert!(root.join("usr/share/doc/pkg/copyright").exists() && root.join("var/cache/apt").is_dir());
}

/// A bad config is one line naming the file and line.
#[test]
fn debloat_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("root")).unwrap();
    std::fs::write(tmp.path().join("bad.toml"), "[[remove]]\nname = \"x\"\nremvoe = 1\n").unwrap();
    let out = run(cvmkit(tmp.path()).args(["debloat", "--config", "bad.toml", "root"]), false);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:3") && err.contains("remvoe"), "{err}");
    snapshot!(err);
    // The default config parses and prints.
    let def = run(cvmkit(tmp.path()).arg("debloat-default-config"), true);
    assert!(stdout(&def).contains("[[remove]]"));
}
