//! The hostname → workload mapping.
//!
//! The metadata value `hostname` is one DNS name or a comma-separated list. Names are trimmed,
//! lower-cased, empty entries skipped, and duplicates removed keeping the first occurrence. Then
//! hostname `i` serves workload `i`:
//!
//! - more hostnames than workloads: the extra hostnames answer **502**;
//! - more workloads than hostnames: the extra workloads have no hostname and stay reachable over
//!   plain HTTP on their own port only (as every workload is).
//!
//! ```
//! use cvmkit_runtime::routes::{parse_hostnames, plan, Target};
//! let names = parse_hostnames("a.example, B.example,a.example,c.example")?;
//! assert_eq!(names, ["a.example", "b.example", "c.example"]);
//! let p = plan(&names, 2, 3001);
//! assert_eq!(p.routes[1].target, Target::Workload { index: 1, port: 3002 });
//! assert_eq!(p.routes[2].target, Target::BadGateway);
//! # Ok::<(), cvmkit_runtime::routes::HostnameError>(())
//! ```

/// The hostname value's parser is part of the protocol a verifier shares (the hostnames are
/// measured): it lives in cvmkit-manifest.
pub use cvmkit_manifest::{parse_hostnames, HostnameError};

/// Where a hostname's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Proxied to workload `index` on `127.0.0.1:port`.
    Workload {
        /// The workload number.
        index: usize,
        /// Its port (`base_port + index`).
        port: u16,
    },
    /// No workload for this hostname: answers 502.
    BadGateway,
}

/// One hostname and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The normalized hostname.
    pub hostname: String,
    /// Where it goes.
    pub target: Target,
}

/// The whole mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One route per hostname, in hostname order.
    pub routes: Vec<Route>,
    /// Workloads without a hostname (HTTP on their own port only).
    pub http_only: Vec<usize>,
}

/// The port of workload `index`: `base_port + index` (3001, 3002, … by default).
pub use cvmkit_manifest::workload_port;

/// Maps `hostnames` (already normalized) onto `workloads` workloads.
pub fn plan(hostnames: &[String], workloads: usize, base_port: u16) -> Plan {
    let routes = hostnames
        .iter()
        .enumerate()
        .map(|(i, h)| Route {
            hostname: h.clone(),
            target: if i < workloads {
                Target::Workload { index: i, port: workload_port(base_port, i) }
            } else {
                Target::BadGateway
            },
        })
        .collect();
    Plan { routes, http_only: (hostnames.len().min(workloads)..workloads).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(parse_hostnames(" A.Example. ,,a.example").unwrap(), ["a.example"]);
        assert_eq!(parse_hostnames("").unwrap(), Vec::<String>::new());
        let chars = "only letters, digits, '-' and '.' are allowed";
        for (bad, reason) in [
            ("a b", chars),
            ("a;b", chars),
            ("-a.example", "a label starts or ends with '-'"),
            ("a..b", "empty label"),
            ("1.2.3.4", "an IP address, not a name"),
            ("x.example}", chars),
            ("a.example/x", chars),
            ("*.example", chars),
        ] {
            assert_eq!(parse_hostnames(bad), Err(HostnameError { name: bad.into(), reason }), "{bad}");
        }
    }

    #[test]
    fn more_workloads_than_names() {
        let p = plan(&["a".into()], 3, 3001);
        assert_eq!(p.routes, [Route { hostname: "a".into(), target: Target::Workload { index: 0, port: 3001 } }]);
        assert_eq!(p.http_only, [1, 2]);
    }
}
