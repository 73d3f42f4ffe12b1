//! Resolution time on a synthetic graph: 500 packages with 30 versions each, every release
//! depending on three later packages. Prints the median of several runs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use cargo_wreg::resolve::{Index, Origin, Outcome, PackageKey, Requirement, resolve};
use semver::{Version, VersionReq};

const PACKAGES: usize = 500;
const VERSIONS: u64 = 30;
const RUNS: usize = 15;

struct Graph {
    versions: HashMap<PackageKey, Vec<Version>>,
    deps: HashMap<(PackageKey, Version), Vec<(PackageKey, VersionReq)>>,
}

impl Index for Graph {
    fn versions(&self, key: &PackageKey) -> Option<&[Version]> {
        self.versions.get(key).map(Vec::as_slice)
    }

    fn dependencies(
        &self,
        key: &PackageKey,
        version: &Version,
    ) -> Option<&[(PackageKey, VersionReq)]> {
        self.deps.get(&(key.clone(), version.clone())).map(Vec::as_slice)
    }
}

fn key(i: usize) -> PackageKey {
    PackageKey {
        name: format!("bench:p{i}").parse().expect("valid name"),
        registry: "127.0.0.1:5000".parse().expect("valid registry"),
    }
}

/// Versions 1.0.0 ..= 1.9.0, 2.0.0 ..= 2.9.0, 3.0.0 ..= 3.9.0; each release needs three later
/// packages at `^{major}.{minor / 2}` so requirements overlap within a track.
fn graph() -> Graph {
    let mut versions = HashMap::new();
    let mut deps = HashMap::new();
    for i in 0..PACKAGES {
        let list: Vec<Version> =
            (0..VERSIONS).map(|n| Version::new(1 + n / 10, n % 10, 0)).collect();
        for version in &list {
            let needs = (1..=3)
                .map(|step| i + step * 7)
                .filter(|&j| j < PACKAGES)
                .map(|j| {
                    let req = format!("^{}.{}", version.major, version.minor / 2);
                    (key(j), req.parse().expect("valid requirement"))
                })
                .collect();
            deps.insert((key(i), version.clone()), needs);
        }
        versions.insert(key(i), list);
    }
    Graph { versions, deps }
}

fn main() {
    let graph = graph();
    let roots: Vec<Requirement> = (0..7)
        .map(|i| Requirement {
            key: key(i),
            req: "^2.1".parse().expect("valid requirement"),
            origin: Origin::Root("bench".into()),
        })
        .collect();
    let mut times: Vec<Duration> = Vec::new();
    let mut releases = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        match resolve(&roots, &graph, &BTreeMap::new()) {
            Ok(Outcome::Resolved(resolution)) => releases = resolution.releases.len(),
            Ok(Outcome::Need(need)) => panic!("the synthetic index is complete, yet {need:?}"),
            Err(e) => panic!("resolution failed: {e:#}"),
        }
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "resolve: {PACKAGES} packages x {VERSIONS} versions, {releases} releases chosen: median {:.2} ms (min {:.2} ms, {RUNS} runs)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
