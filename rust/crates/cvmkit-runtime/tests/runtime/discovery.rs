//! Manifest discovery against loopback servers that answer like the GCP metadata server, Azure
//! IMDS and the QEMU host service: source order, required headers, numbered keys and lists,
//! hangs, 404s and 5xx, chunked bodies, and the refusal of bad base64 / JSON / hashes.

use std::time::{Duration, Instant};

use cvmkit_runtime::http::Client;
use cvmkit_runtime::manifest::AppSource;
use cvmkit_runtime::metadata::{DiscoverError, Discovery, Endpoints, SourceKind};

use crate::support::*;

const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const H3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// A discovery over the given endpoints with short timeouts (never the defaults).
fn discovery(sources: &[SourceKind], gcp: &str, azure: &str, qemu: &str) -> Discovery {
    Discovery {
        sources: sources.to_vec(),
        endpoints: Endpoints {
            gcp: gcp.to_string(),
            azure: azure.to_string(),
            qemu: qemu.to_string(),
            manifest_key: "manifest".into(),
            hostname_key: "hostname".into(),
        },
        client: Client {
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_millis(700),
            max_body: 64 << 10,
            ..Client::default()
        },
        max_workloads: cvmkit_runtime::manifest::MAX_WORKLOADS,
        base_port: cvmkit_runtime::manifest::BASE_PORT,
    }
}

fn run(d: &Discovery) -> (Result<cvmkit_runtime::metadata::Found, DiscoverError>, Vec<String>) {
    let mut lines = Vec::new();
    let r = d.discover(&mut |l| lines.push(l));
    (r, lines)
}

const ATTR: &str = "/computeMetadata/v1/instance/attributes/";
const TAGS: &str = "/metadata/instance/compute/tagsList?api-version=2021-02-01";

fn gcp_url(s: &Server) -> String {
    format!("http://{}{ATTR}", s.addr)
}

fn azure_url(s: &Server) -> String {
    format!("http://{}{TAGS}", s.addr)
}

#[test]
fn gcp_attribute_with_header_and_hostname() {
    let gcp = Server::start(Flavor::Gcp);
    gcp.set(&format!("{ATTR}manifest"), Reply::Body(manifest_value("http://10.0.2.2:8090/app", H1).into_bytes()));
    gcp.set(&format!("{ATTR}hostname"), Reply::Body(b"app.example".to_vec()));
    let d = discovery(&[SourceKind::Gcp], &gcp_url(&gcp), "", "");
    let (found, lines) = run(&d);
    let found = found.unwrap();
    assert_eq!(found.source, SourceKind::Gcp);
    assert_eq!(found.manifests.len(), 1);
    assert_eq!(found.manifests[0].sha256.to_hex(), H1);
    assert_eq!(found.hostname.as_deref(), Some("app.example"));
    assert_eq!(lines, ["metadata source gcp: answered with 1 workload(s), hostname 'app.example'"]);
    // Every request carried the header (the stand-in answers 403 without it), and the key after
    // `manifest` was probed and found missing.
    let reqs = gcp.requests();
    assert!(reqs.iter().all(|r| r.headers.contains(&("metadata-flavor".into(), "Google".into()))));
    let paths: Vec<_> = reqs.iter().map(|r| r.path.trim_start_matches(ATTR).to_string()).collect();
    assert_eq!(paths, ["manifest", "manifest-1", "hostname"]);
}

#[test]
fn sources_are_tried_in_order_past_dead_hung_and_empty_ones() {
    // GCP: nothing listens. Azure: accepts and never answers. QEMU-1: answers 404 for everything
    // (checked by a second QEMU-like server standing in for the GCP slot below). QEMU: answers.
    let hung = Server::start(Flavor::Azure);
    hung.set(TAGS, Reply::Hang(Duration::from_secs(10)));
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Body(manifest_value("file:///opt/app", H2).into_bytes()));
    let d = discovery(&SourceKind::DEFAULT_ORDER, &closed_url(), &azure_url(&hung), &qemu.url());
    let start = Instant::now();
    let (found, lines) = run(&d);
    let found = found.unwrap();
    assert!(start.elapsed() < Duration::from_secs(3), "timeouts not applied: {:?}", start.elapsed());
    assert_eq!(found.source, SourceKind::Qemu);
    assert_eq!(found.manifests[0].app, AppSource::File("/opt/app".into()));
    assert_eq!(found.hostname, None);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("metadata source gcp: no answer (cannot connect to "), "{}", lines[0]);
    assert!(lines[1].starts_with("metadata source azure: no answer (timed out after 700ms"), "{}", lines[1]);
    assert_eq!(lines[2], "metadata source qemu: answered with 1 workload(s)");
}

#[test]
fn empty_source_and_server_errors_fall_through() {
    // GCP answers but has no manifest (404); Azure answers 500; QEMU answers.
    let gcp = Server::start(Flavor::Gcp);
    let azure = Server::start(Flavor::Azure);
    azure.set(TAGS, Reply::Status(500));
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Body(manifest_value("http://h/a", H1).into_bytes()));
    let d = discovery(&SourceKind::DEFAULT_ORDER, &gcp_url(&gcp), &azure_url(&azure), &qemu.url());
    let (found, lines) = run(&d);
    assert_eq!(found.unwrap().source, SourceKind::Qemu);
    assert_eq!(lines[0], "metadata source gcp: answered, no 'manifest' key");
    assert!(lines[1].contains("azure: no answer") && lines[1].contains("HTTP status 500"), "{}", lines[1]);
}

#[test]
fn nothing_anywhere_is_not_found() {
    let qemu = Server::start(Flavor::Plain);
    let d = discovery(&[SourceKind::Qemu, SourceKind::Gcp], &closed_url(), "", &qemu.url());
    let (r, lines) = run(&d);
    let e = r.unwrap_err();
    assert!(matches!(e, DiscoverError::NotFound { ref tried } if tried == "qemu, gcp"), "{e}");
    assert_eq!(lines.len(), 2);
}

#[test]
fn azure_tags_list_with_numbered_manifests_and_lists() {
    let azure = Server::start(Flavor::Azure);
    let list = b64(&format!(r#"[{{"app":"http://h/a","sha256":"{H1}"}},{{"app":"http://h/b","sha256":"{H2}"}}]"#));
    let tags = format!(
        r#"[{{"name":"Manifest","value":"{list}"}},{{"name":"env","value":"prod"}},{{"name":"manifest-1","value":"{}"}},{{"name":"manifest-3","value":"ignored"}},{{"name":"hostname","value":"a.example,b.example"}}]"#,
        manifest_value("https://h/c", H3)
    );
    azure.set(TAGS, Reply::Body(tags.into_bytes()));
    let d = discovery(&[SourceKind::Azure], "", &azure_url(&azure), "");
    let (found, _) = run(&d);
    let found = found.unwrap();
    let digests: Vec<_> = found.manifests.iter().map(|m| m.sha256.to_hex()).collect();
    assert_eq!(digests, [H1, H2, H3]);
    assert_eq!(found.keys, ["manifest", "manifest", "manifest-1"]);
    assert_eq!(found.manifests[2].app, AppSource::Https("https://h/c".into()));
    assert_eq!(found.hostname.as_deref(), Some("a.example,b.example"));
    // One request, with the Azure header.
    let reqs = azure.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].headers.contains(&("metadata".into(), "true".into())));
}

#[test]
fn azure_without_the_header_is_refused_by_the_stand_in() {
    // The stand-in answers 400 when `Metadata: true` is missing, like IMDS; a client that forgot
    // it would fall through. Checked from the outside with a raw request.
    let azure = Server::start(Flavor::Azure);
    azure.set(TAGS, Reply::Body(b"[]".to_vec()));
    let c = Client::default();
    assert_eq!(c.get(&azure_url(&azure), &[]).unwrap().status, 400);
    assert_eq!(c.get(&azure_url(&azure), &[("Metadata", "true")]).unwrap().status, 200);
}

#[test]
fn qemu_chunked_and_numbered() {
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Chunked(format!("{}\n", manifest_value("http://h/a", H1)).into_bytes()));
    qemu.set("/manifest-1", Reply::Chunked(manifest_value("http://h/b", H2).into_bytes()));
    qemu.set("/hostname", Reply::Body(b" x.example , x.example ".to_vec()));
    let d = discovery(&[SourceKind::Qemu], "", "", &qemu.url());
    let found = run(&d).0.unwrap();
    assert_eq!(found.manifests.len(), 2);
    assert_eq!(found.keys, ["manifest", "manifest-1"]);
}

#[test]
fn bad_values_are_final_not_skipped() {
    let cases: [(&str, &str); 4] = [
        ("bad base64", "@@not-base64@@"),
        ("bad json", &b64("{\"app\": ")),
        ("bad hash", &b64(r#"{"app":"http://h/a","sha256":"xyz"}"#)),
        ("unknown field", &b64(&format!(r#"{{"app":"http://h/a","sha256":"{H1}","run":"x"}}"#))),
    ];
    for (what, value) in cases {
        let qemu = Server::start(Flavor::Plain);
        qemu.set("/manifest", Reply::Body(value.as_bytes().to_vec()));
        // A later source has a good manifest: it must not be used.
        let good = Server::start(Flavor::Gcp);
        good.set(&format!("{ATTR}manifest"), Reply::Body(manifest_value("http://h/a", H1).into_bytes()));
        let d = discovery(&[SourceKind::Qemu, SourceKind::Gcp], &gcp_url(&good), "", &qemu.url());
        let e = run(&d).0.unwrap_err();
        assert!(
            matches!(e, DiscoverError::Invalid { source_kind: SourceKind::Qemu, ref key, .. } if key == "manifest"),
            "{what}: {e}"
        );
        assert!(good.requests().is_empty(), "{what}: fell back to a later source");
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{what}: multi-line message {msg:?}");
    }
}

#[test]
fn bad_numbered_value_fails_too() {
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Body(manifest_value("http://h/a", H1).into_bytes()));
    qemu.set("/manifest-1", Reply::Body(b"e30=".to_vec())); // "{}"
    let d = discovery(&[SourceKind::Qemu], "", "", &qemu.url());
    let e = run(&d).0.unwrap_err();
    assert!(matches!(e, DiscoverError::Invalid { ref key, .. } if key == "manifest-1"), "{e}");
}

#[test]
fn connection_closed_without_answer_is_no_answer() {
    let qemu = Server::start(Flavor::Plain);
    qemu.set("/manifest", Reply::Close);
    let d = discovery(&[SourceKind::Qemu], "", "", &qemu.url());
    let (r, lines) = run(&d);
    assert!(matches!(r, Err(DiscoverError::NotFound { .. })));
    assert!(lines[0].contains("qemu: no answer"), "{}", lines[0]);
}
