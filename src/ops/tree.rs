//! `cargo wreg tree`: the resolved package graph drawn like `cargo tree`, forwards from each
//! member, inverted from one package, or limited to packages present in several versions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Component, PathBuf};

use anyhow::Result;
use semver::Version;

use crate::Help;
use crate::lock::LockFile;
use crate::ops::fetch::{FetchOptions, ResolvedWorkspace, resolve_workspace};
use crate::ops::workspace::Workspace;
use crate::package::PackageName;
use crate::resolve::{Origin, PackageKey};

#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    pub fetch: FetchOptions,
    /// Show who pulls in this package instead.
    pub invert: Option<PackageName>,
    /// Only packages present in several versions, inverted.
    pub duplicates: bool,
    /// The members to draw from (`-p`); without any, those cargo would choose.
    pub packages: Vec<String>,
}

/// A node of the drawn graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Member(String),
    Release(PackageKey, Version),
    /// A dependency named by path: its name in the manifest, and the path.
    Path(PackageName, PathBuf),
}

impl Node {
    fn label(&self) -> String {
        match self {
            Node::Member(name) => name.clone(),
            Node::Release(key, version) => format!("{} v{version} ({})", key.name, key.registry),
            Node::Path(name, path) => format!("{name} ({})", path.display()),
        }
    }
}

/// Draws the tree as text (stdout is the caller's).
pub async fn tree(workspace: &Workspace, options: &TreeOptions) -> Result<String> {
    // A mistyped `-p` is found before anything is resolved.
    let selected = workspace.select(&options.packages)?;
    let lock = LockFile::load(&workspace.lock_path())?;
    let resolved = resolve_workspace(workspace, &lock, &options.fetch, Vec::new()).await?;
    if options.fetch.locked && resolved.index.lock_for(&resolved.resolution) != lock {
        return Err(Help::error(
            format!(
                "`{}` is not up to date but --locked was passed",
                workspace.lock_path().display()
            ),
            "run `cargo wreg fetch` to update it",
        ));
    }
    let edges = edges(&resolved);
    let mut reverse: BTreeMap<&Node, BTreeSet<&Node>> = BTreeMap::new();
    for (from, tos) in &edges {
        for to in tos {
            reverse.entry(to).or_default().insert(from);
        }
    }

    let mut out = String::new();
    let starts: Vec<Node> = if options.duplicates {
        duplicated(&resolved)
    } else if let Some(name) = &options.invert {
        let found: Vec<Node> = edges
            .keys()
            .chain(edges.values().flatten())
            .filter(|n| match n {
                Node::Release(key, _) => &key.name == name,
                Node::Path(path_name, _) => path_name == name,
                Node::Member(_) => false,
            })
            .cloned()
            .collect::<BTreeSet<Node>>()
            .into_iter()
            .collect();
        if found.is_empty() {
            return Err(Help::error(
                format!("package `{name}` is not in the resolved graph"),
                "run `cargo wreg tree` to see the packages the workspace uses",
            ));
        }
        found
    } else {
        selected.iter().map(|m| Node::Member(m.package.name.to_string())).collect()
    };
    let inverted = options.duplicates || options.invert.is_some();
    for (i, start) in starts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let next = |node: &Node| -> Vec<Node> {
            let list: Vec<&Node> = if inverted {
                reverse.get(node).map(|s| s.iter().copied().collect()).unwrap_or_default()
            } else {
                edges.get(node).map(|s| s.iter().collect()).unwrap_or_default()
            };
            list.into_iter().cloned().collect()
        };
        draw(start, &next, "", &mut BTreeSet::new(), &mut out);
    }
    Ok(out)
}

fn releases<'a>(resolved: &'a ResolvedWorkspace) -> impl Iterator<Item = Node> + 'a {
    resolved.resolution.releases.iter().map(|(k, v)| Node::Release(k.clone(), v.clone()))
}

/// Releases of packages that appear in more than one version.
fn duplicated(resolved: &ResolvedWorkspace) -> Vec<Node> {
    let mut count: BTreeMap<&PackageName, usize> = BTreeMap::new();
    for (key, _) in &resolved.resolution.releases {
        *count.entry(&key.name).or_default() += 1;
    }
    releases(resolved).filter(|n| matches!(n, Node::Release(k, _) if count[&k.name] > 1)).collect()
}

/// Forward edges: member to the releases its requirements chose, release to release.
fn edges(resolved: &ResolvedWorkspace) -> BTreeMap<Node, BTreeSet<Node>> {
    let resolution = &resolved.resolution;
    let mut edges: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    let mut paths: BTreeMap<(&str, String), Node> = BTreeMap::new();
    for (member, name, path) in resolved.path_dependencies() {
        // As written in the manifest, less the `.` components joining made.
        let path = path.components().filter(|c| *c != Component::CurDir).collect();
        let node = Node::Path(name.clone(), path);
        edges.entry(Node::Member(member.to_string())).or_default().insert(node.clone());
        edges.entry(node.clone()).or_default();
        paths.insert((member, name.to_string()), node);
    }
    for (member, roots) in resolved.roots() {
        for requirement in roots {
            let from = match &requirement.origin {
                Origin::Path { member, dependency } => {
                    match paths.get(&(member.as_str(), dependency.clone())) {
                        Some(node) => node.clone(),
                        None => continue,
                    }
                }
                _ => Node::Member(member.to_string()),
            };
            let Some(version) = resolution.version_for(&requirement.key, &requirement.req) else {
                continue;
            };
            let to = Node::Release(requirement.key.clone(), version.clone());
            edges.entry(from).or_default().insert(to);
        }
    }
    for (key, version) in &resolution.releases {
        let Some(release) = resolved.index.release(key, version) else { continue };
        let children = release.requirements.iter().filter_map(|(dep, req)| {
            Some(Node::Release(dep.clone(), resolution.version_for(dep, req)?.clone()))
        });
        edges.entry(Node::Release(key.clone(), version.clone())).or_default().extend(children);
    }
    edges
}

/// Draws `node` and, below it, what `next` gives, marking repeats with `(*)` as cargo does.
fn draw(
    node: &Node,
    next: &dyn Fn(&Node) -> Vec<Node>,
    prefix: &str,
    seen: &mut BTreeSet<Node>,
    out: &mut String,
) {
    let children = next(node);
    let repeated = !seen.insert(node.clone()) && !children.is_empty();
    let _ = writeln!(out, "{}{}", node.label(), if repeated { " (*)" } else { "" });
    if repeated {
        return;
    }
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        out.push_str(prefix);
        out.push_str(if last { "└── " } else { "├── " });
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        draw(child, next, &deeper, seen, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str, version: &str) -> Node {
        let key =
            PackageKey { name: name.parse().unwrap(), registry: "127.0.0.1:5000".parse().unwrap() };
        Node::Release(key, version.parse().unwrap())
    }

    #[test]
    fn draws_like_cargo_tree() {
        let mut edges: BTreeMap<Node, Vec<Node>> = BTreeMap::new();
        edges.insert(
            Node::Member("hello".into()),
            vec![release("acme:greeting", "1.1.0"), release("acme:text", "2.0.0")],
        );
        edges.insert(release("acme:greeting", "1.1.0"), vec![release("acme:text", "1.1.0")]);
        let next = |n: &Node| edges.get(n).cloned().unwrap_or_default();
        let mut out = String::new();
        draw(&Node::Member("hello".into()), &next, "", &mut BTreeSet::new(), &mut out);
        assert_eq!(
            out,
            "hello\n\
             ├── acme:greeting v1.1.0 (127.0.0.1:5000)\n\
             │   └── acme:text v1.1.0 (127.0.0.1:5000)\n\
             └── acme:text v2.0.0 (127.0.0.1:5000)\n"
        );
    }
}
