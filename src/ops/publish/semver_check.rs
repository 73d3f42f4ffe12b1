//! The semver check of `publish`: which earlier release a new one must stay compatible with,
//! and what changed incompatibly between the two. Pure: both releases are wasm bytes already in
//! memory.
//!
//! A WIT package is used both by components that implement its worlds and by hosts and
//! components that call its interfaces, and only an unchanged package keeps all of them
//! working. The rule taken is the one WASI's minor releases follow and component linkers
//! accept by instance subtyping: every interface, world, type and function of the earlier
//! release is still there with the same shape; new ones may be added, except exports of a world
//! that was there: each is one more thing every component implementing it must provide (which
//! is what crates targeting the world do). A component is judged by
//! its exports, which are its API. Its imports are what it needs from a host and, like a
//! crate's dependencies, are not what its version promises: a change there is reported, not
//! refused.
//!
//! Shapes are compared structurally across the two releases with package versions ignored, so
//! moving a reference from `acme:text@1.0.0` to `@1.1.0` is fine while the types used stay the
//! same. Resources are nominal: the same resource has the same name in the same interface.
//! wit-component's own `semver_check` is not used: it needs the `wat` parser built in, and it
//! reports a mismatch as a validation error of a component it synthesizes rather than naming
//! the item that changed.

use std::collections::{HashMap, HashSet};
use std::fmt;

use anyhow::{Context, Result};
use semver::Version;
use wit_component::DecodedWasm;
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, PackageId, Resolve, Type, TypeDefKind, TypeId,
    WorldId, WorldItem, WorldKey,
};

/// The release `version` must stay compatible with: the newest stable one of `published` below
/// it in its compatibility series, the same major version from 1.0.0 on and the same `0.y`
/// below it (every `0.0.z` stands alone, as in cargo). Pre-releases promise nothing, so they
/// are never the baseline.
pub fn predecessor<'a>(version: &Version, published: &'a [Version]) -> Option<&'a Version> {
    published.iter().filter(|v| v.pre.is_empty() && *v < version && same_series(v, version)).max()
}

fn same_series(a: &Version, b: &Version) -> bool {
    match (a.major, b.major) {
        (0, 0) => a.minor == b.minor && (a.minor != 0 || a.patch == b.patch),
        (a_major, b_major) => a_major == b_major,
    }
}

/// The lowest version after `version` that starts a new compatibility series.
pub fn next_breaking(version: &Version) -> Version {
    match (version.major, version.minor) {
        (0, 0) => Version::new(0, 0, version.patch + 1),
        (0, minor) => Version::new(0, minor + 1, 0),
        (major, _) => Version::new(major + 1, 0, 0),
    }
}

/// One difference between two releases, named by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Removed,
    Added,
    /// Still there, with another shape; says how.
    Changed(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ChangeKind::Removed => write!(f, "{} was removed", self.path),
            ChangeKind::Added => write!(f, "{} is new", self.path),
            ChangeKind::Changed(how) => write!(f, "{} changed: {how}", self.path),
        }
    }
}

/// What a new release changed from the earlier one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Changes that break users of the earlier release.
    pub breaking: Vec<Change>,
    /// Changes to what a component needs from its host: new imports, or imports of another
    /// shape.
    pub requirements: Vec<Change>,
}

/// Compares two releases of one package, each a component or a WIT package in binary form.
pub fn compare(old: &[u8], new: &[u8]) -> Result<Report> {
    let old = wit_component::decode(old).context("failed to decode the earlier release")?;
    let new = wit_component::decode(new).context("failed to decode the new release")?;
    Ok(match (&old, &new) {
        (DecodedWasm::WitPackage(a, a_id), DecodedWasm::WitPackage(b, b_id)) => {
            Report { breaking: compare_packages(a, *a_id, b, *b_id), requirements: Vec::new() }
        }
        (DecodedWasm::Component(a, a_world), DecodedWasm::Component(b, b_world)) => {
            compare_components(a, *a_world, b, *b_world)
        }
        _ => {
            let kind = |d: &DecodedWasm| match d {
                DecodedWasm::WitPackage(..) => "a WIT package",
                DecodedWasm::Component(..) => "a component",
            };
            let how = format!("was {}, is now {}", kind(&old), kind(&new));
            let change = Change { path: "the release".into(), kind: ChangeKind::Changed(how) };
            Report { breaking: vec![change], requirements: Vec::new() }
        }
    })
}

/// The incompatible changes from WIT package `old_id` of `old` to `new_id` of `new`.
pub fn compare_packages(
    old: &Resolve,
    old_id: PackageId,
    new: &Resolve,
    new_id: PackageId,
) -> Vec<Change> {
    let mut compare = Compare::new(old, new, Some(old_id));
    let (old_package, new_package) = (&old.packages[old_id], &new.packages[new_id]);
    let interfaces = |r: &Resolve, p: &wit_parser::Package| {
        p.interfaces.values().map(|&i| (interface_name(r, i), i)).collect::<Vec<_>>()
    };
    let pairs = pair_up(interfaces(old, old_package), interfaces(new, new_package), Side::Old);
    for (name, pair) in pairs {
        let path = format!("interface `{name}`");
        compare.pair(path, pair, |c, path, a, b| c.interface(path, a, b, Side::Old));
    }
    let worlds = |p: &wit_parser::Package| {
        p.worlds.iter().map(|(name, &w)| (name.clone(), w)).collect::<Vec<_>>()
    };
    for (name, pair) in pair_up(worlds(old_package), worlds(new_package), Side::Old) {
        let path = format!("world `{name}`");
        compare.pair(path, pair, |c, path, a, b| c.world(path, a, b));
    }
    compare.changes
}

/// The changes from the component whose world is `old_world` of `old` to the one whose world
/// is `new_world` of `new`: exports that lost items or changed shape break its users; imports
/// it did not have before are new requirements on hosts.
pub fn compare_components(
    old: &Resolve,
    old_world: WorldId,
    new: &Resolve,
    new_world: WorldId,
) -> Report {
    let (old_world, new_world) = (&old.worlds[old_world], &new.worlds[new_world]);
    let mut exports = Compare::new(old, new, None);
    exports.items("export", &old_world.exports, &new_world.exports, Side::Old);
    let mut imports = Compare::new(old, new, None);
    imports.items("import", &old_world.imports, &new_world.imports, Side::New);
    Report { breaking: exports.changes, requirements: imports.changes }
}

/// Which release's items must all be found in the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
}

/// An item matched by name across the two releases.
enum Pair<T> {
    Both(T, T),
    OnlyOld,
    OnlyNew,
}

/// Matches `old` and `new` items by name, keeping each item of the `required` side, in its
/// order.
fn pair_up<T: Copy>(
    old: Vec<(String, T)>,
    new: Vec<(String, T)>,
    required: Side,
) -> Vec<(String, Pair<T>)> {
    let (kept, other) = match required {
        Side::Old => (old, new),
        Side::New => (new, old),
    };
    let other: HashMap<String, T> = other.into_iter().collect();
    kept.into_iter()
        .map(|(name, item)| {
            let pair = match (other.get(&name), required) {
                (Some(&found), Side::Old) => Pair::Both(item, found),
                (Some(&found), Side::New) => Pair::Both(found, item),
                (None, Side::Old) => Pair::OnlyOld,
                (None, Side::New) => Pair::OnlyNew,
            };
            (name, pair)
        })
        .collect()
}

/// Walks two releases side by side, collecting changes.
struct Compare<'a> {
    old: &'a Resolve,
    new: &'a Resolve,
    /// The package being compared, whose interfaces are compared on their own; a world that
    /// uses one of them only needs it to be there still.
    own: Option<PackageId>,
    /// Type pairs already found equal: shared types are compared once.
    equal: HashSet<(TypeId, TypeId)>,
    changes: Vec<Change>,
}

/// Why two shapes differ.
type Why = String;

impl<'a> Compare<'a> {
    fn new(old: &'a Resolve, new: &'a Resolve, own: Option<PackageId>) -> Self {
        Self { old, new, own, equal: HashSet::new(), changes: Vec::new() }
    }

    /// Records the change a pair stands for, or compares its two sides with `both`.
    fn pair<T>(&mut self, path: String, pair: Pair<T>, both: impl FnOnce(&mut Self, &str, T, T)) {
        match pair {
            Pair::Both(a, b) => both(self, &path, a, b),
            Pair::OnlyOld => self.changes.push(Change { path, kind: ChangeKind::Removed }),
            Pair::OnlyNew => self.changes.push(Change { path, kind: ChangeKind::Added }),
        }
    }

    fn changed(&mut self, path: &str, how: Result<(), Why>) {
        if let Err(how) = how {
            self.changes.push(Change { path: path.to_string(), kind: ChangeKind::Changed(how) });
        }
    }

    fn world(&mut self, path: &str, a: WorldId, b: WorldId) {
        let (old, new) = (&self.old.worlds[a], &self.new.worlds[b]);
        self.items(&format!("{path}: import"), &old.imports, &new.imports, Side::Old);
        self.items(&format!("{path}: export"), &old.exports, &new.exports, Side::Old);
        // A world is also implemented: each new export is one more thing its components must
        // provide, so a component of the earlier world no longer fits it.
        let before: HashSet<String> = old.exports.keys().map(|k| key_name(self.old, k)).collect();
        for key in new.exports.keys() {
            let name = key_name(self.new, key);
            if !before.contains(&name) {
                let path = format!("{path}: export `{name}`");
                self.changes.push(Change { path, kind: ChangeKind::Added });
            }
        }
    }

    /// Compares the imports or exports of two worlds.
    fn items<'i>(
        &mut self,
        path: &str,
        old: impl IntoIterator<Item = (&'i WorldKey, &'i WorldItem)>,
        new: impl IntoIterator<Item = (&'i WorldKey, &'i WorldItem)>,
        required: Side,
    ) {
        let (old_resolve, new_resolve) = (self.old, self.new);
        let old = old.into_iter().map(|(k, i)| (key_name(old_resolve, k), i)).collect();
        let new = new.into_iter().map(|(k, i)| (key_name(new_resolve, k), i)).collect();
        for (name, pair) in pair_up(old, new, required) {
            let path = format!("{path} `{name}`");
            self.pair(path, pair, |c, path, a, b| c.item(path, a, b, required));
        }
    }

    fn item(&mut self, path: &str, a: &WorldItem, b: &WorldItem, required: Side) {
        match (a, b) {
            (WorldItem::Interface { id: a, .. }, WorldItem::Interface { id: b, .. }) => {
                let own = self.own.is_some() && self.old.interfaces[*a].package == self.own;
                if !own {
                    self.interface(path, *a, *b, required);
                }
            }
            (WorldItem::Function(a), WorldItem::Function(b)) => {
                let how = self.function(a, b);
                self.changed(path, how);
            }
            (WorldItem::Type { id: a, .. }, WorldItem::Type { id: b, .. }) => {
                let how = self.defined(*a, *b);
                self.changed(path, how);
            }
            _ => {
                let how = format!("was {}, is now {}", item_kind(a), item_kind(b));
                self.changed(path, Err(how));
            }
        }
    }

    fn interface(&mut self, path: &str, a: InterfaceId, b: InterfaceId, required: Side) {
        let (old, new) = (&self.old.interfaces[a], &self.new.interfaces[b]);
        let types = |i: &wit_parser::Interface| {
            i.types.iter().map(|(name, &id)| (name.clone(), id)).collect::<Vec<_>>()
        };
        for (name, pair) in pair_up(types(old), types(new), required) {
            let path = format!("{path}: type `{name}`");
            self.pair(path, pair, |c, path, a, b| {
                let how = c.defined(a, b);
                c.changed(path, how);
            });
        }
        let functions = |i: &'a wit_parser::Interface| {
            i.functions.iter().map(|(name, f)| (name.clone(), f)).collect::<Vec<_>>()
        };
        for (name, pair) in pair_up(functions(old), functions(new), required) {
            let path = format!("{path}: function `{name}`");
            self.pair(path, pair, |c, path, a, b| {
                let how = c.function(a, b);
                c.changed(path, how);
            });
        }
    }

    fn function(&mut self, a: &Function, b: &Function) -> Result<(), Why> {
        if std::mem::discriminant(&a.kind) != std::mem::discriminant(&b.kind) {
            return Err(format!("was {}, is now {}", kind_name(&a.kind), kind_name(&b.kind)));
        }
        if let (Some(x), Some(y)) = (a.kind.resource(), b.kind.resource()) {
            self.types(Type::Id(x), Type::Id(y))?;
        }
        let (a_names, b_names) = (param_names(a), param_names(b));
        if a_names != b_names {
            return Err(format!("parameters `({a_names})` became `({b_names})`"));
        }
        for (x, y) in a.params.iter().zip(&b.params) {
            self.types(x.ty, y.ty).map_err(|why| format!("parameter `{}`: {why}", x.name))?;
        }
        self.optional(a.result, b.result).map_err(|why| format!("result: {why}"))
    }

    fn optional(&mut self, a: Option<Type>, b: Option<Type>) -> Result<(), Why> {
        match (a, b) {
            (Some(a), Some(b)) => self.types(a, b),
            (None, None) => Ok(()),
            _ => Err(format!(
                "`{}` became `{}`",
                show_optional(self.old, a),
                show_optional(self.new, b)
            )),
        }
    }

    /// Compares two types used inside other items. A named type that changed is only named:
    /// how it changed is told where it is defined.
    fn types(&mut self, a: Type, b: Type) -> Result<(), Why> {
        match (unalias(self.old, a), unalias(self.new, b)) {
            (Type::Id(x), Type::Id(y)) => match &self.old.types[x].name {
                Some(name) => self.definitions(x, y).map_err(|_| format!("`{name}` changed")),
                None => self.definitions(x, y),
            },
            (a, b) if a == b => Ok(()),
            (a, b) => Err(self.became(a, b)),
        }
    }

    /// Compares two types defined as items of an interface or world, saying how they differ.
    fn defined(&mut self, a: TypeId, b: TypeId) -> Result<(), Why> {
        match (unalias(self.old, Type::Id(a)), unalias(self.new, Type::Id(b))) {
            (Type::Id(x), Type::Id(y)) => self.definitions(x, y),
            (a, b) if a == b => Ok(()),
            (a, b) => Err(self.became(a, b)),
        }
    }

    fn became(&self, a: Type, b: Type) -> Why {
        format!("`{}` became `{}`", show(self.old, a), show(self.new, b))
    }

    fn definitions(&mut self, x: TypeId, y: TypeId) -> Result<(), Why> {
        if self.equal.contains(&(x, y)) {
            return Ok(());
        }
        let (old, new) = (self.old, self.new);
        match (&old.types[x].kind, &new.types[y].kind) {
            (TypeDefKind::Record(a), TypeDefKind::Record(b)) => {
                let fields = |r: &'a wit_parser::Record| r.fields.iter().map(|f| (&f.name, f.ty));
                self.named("fields", fields(a), fields(b))?;
            }
            (TypeDefKind::Variant(a), TypeDefKind::Variant(b)) => {
                let cases = |v: &'a wit_parser::Variant| v.cases.iter().map(|c| (&c.name, c.ty));
                self.named_optional(cases(a), cases(b))?;
            }
            (TypeDefKind::Enum(a), TypeDefKind::Enum(b)) => {
                let cases = |e: &'a wit_parser::Enum| e.cases.iter().map(|c| &c.name);
                same_names("cases", cases(a), cases(b))?;
            }
            (TypeDefKind::Flags(a), TypeDefKind::Flags(b)) => {
                let flags = |f: &'a wit_parser::Flags| f.flags.iter().map(|f| &f.name);
                same_names("flags", flags(a), flags(b))?;
            }
            (TypeDefKind::Tuple(a), TypeDefKind::Tuple(b)) if a.types.len() == b.types.len() => {
                for (a, b) in a.types.iter().zip(&b.types) {
                    self.types(*a, *b).map_err(|why| format!("in `{}`: {why}", show_id(old, x)))?;
                }
            }
            (TypeDefKind::Resource, TypeDefKind::Resource) => {
                let (a, b) = (resource_name(old, x), resource_name(new, y));
                if a != b {
                    return Err(format!("resource `{a}` became `{b}`"));
                }
            }
            (TypeDefKind::Handle(a), TypeDefKind::Handle(b)) => self.handles(*a, *b, x, y)?,
            (TypeDefKind::Option(a), TypeDefKind::Option(b))
            | (TypeDefKind::List(a), TypeDefKind::List(b)) => self.within(old, x, *a, *b)?,
            (TypeDefKind::FixedLengthList(a, n), TypeDefKind::FixedLengthList(b, m)) if n == m => {
                self.within(old, x, *a, *b)?
            }
            (TypeDefKind::Map(a_key, a_value), TypeDefKind::Map(b_key, b_value)) => {
                self.within(old, x, *a_key, *b_key)?;
                self.within(old, x, *a_value, *b_value)?;
            }
            (TypeDefKind::Result(a), TypeDefKind::Result(b)) => {
                let context = |why| format!("in `{}`: {why}", show_id(old, x));
                self.optional(a.ok, b.ok).map_err(context)?;
                self.optional(a.err, b.err).map_err(context)?;
            }
            (TypeDefKind::Future(a), TypeDefKind::Future(b))
            | (TypeDefKind::Stream(a), TypeDefKind::Stream(b)) => {
                self.optional(*a, *b).map_err(|why| format!("in `{}`: {why}", show_id(old, x)))?
            }
            (TypeDefKind::Unknown, TypeDefKind::Unknown) => {}
            _ => return Err(self.became(Type::Id(x), Type::Id(y))),
        }
        self.equal.insert((x, y));
        Ok(())
    }

    /// Compares the element types of two containers, the first of them `outer`.
    fn within(&mut self, old: &Resolve, outer: TypeId, a: Type, b: Type) -> Result<(), Why> {
        self.types(a, b).map_err(|why| format!("in `{}`: {why}", show_id(old, outer)))
    }

    fn handles(&mut self, a: Handle, b: Handle, x: TypeId, y: TypeId) -> Result<(), Why> {
        match (a, b) {
            (Handle::Own(a), Handle::Own(b)) | (Handle::Borrow(a), Handle::Borrow(b)) => {
                self.types(Type::Id(a), Type::Id(b))
            }
            _ => Err(self.became(Type::Id(x), Type::Id(y))),
        }
    }

    /// Compares record fields: the same names in the same order, each of the same type.
    fn named<'n>(
        &mut self,
        what: &str,
        a: impl Iterator<Item = (&'n String, Type)> + Clone,
        b: impl Iterator<Item = (&'n String, Type)> + Clone,
    ) -> Result<(), Why> {
        same_names(what, a.clone().map(|(n, _)| n), b.clone().map(|(n, _)| n))?;
        for ((name, a), (_, b)) in a.zip(b) {
            self.types(a, b).map_err(|why| format!("field `{name}`: {why}"))?;
        }
        Ok(())
    }

    /// Compares variant cases: the same names in the same order, each with the same payload.
    fn named_optional<'n>(
        &mut self,
        a: impl Iterator<Item = (&'n String, Option<Type>)> + Clone,
        b: impl Iterator<Item = (&'n String, Option<Type>)> + Clone,
    ) -> Result<(), Why> {
        same_names("cases", a.clone().map(|(n, _)| n), b.clone().map(|(n, _)| n))?;
        for ((name, a), (_, b)) in a.zip(b) {
            self.optional(a, b).map_err(|why| format!("case `{name}`: {why}"))?;
        }
        Ok(())
    }
}

fn param_names(f: &Function) -> String {
    f.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn same_names<'n>(
    what: &str,
    a: impl Iterator<Item = &'n String>,
    b: impl Iterator<Item = &'n String>,
) -> Result<(), Why> {
    let (a, b): (Vec<_>, Vec<_>) =
        (a.map(String::as_str).collect(), b.map(String::as_str).collect());
    if a == b {
        return Ok(());
    }
    Err(format!("{what} `{}` became `{}`", a.join(", "), b.join(", ")))
}

/// A type with the aliases (`type a = b`, `use`) it goes through followed.
fn unalias(resolve: &Resolve, mut ty: Type) -> Type {
    while let Type::Id(id) = ty {
        match resolve.types[id].kind {
            TypeDefKind::Type(target) => ty = target,
            _ => break,
        }
    }
    ty
}

/// The name of a world item, as the same item is named in any version of its package.
fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => name.clone(),
        WorldKey::Interface(id) => interface_name(resolve, *id),
    }
}

/// `ns:pkg/name` without the version, or the bare name of an interface outside any package.
fn interface_name(resolve: &Resolve, id: InterfaceId) -> String {
    let interface = &resolve.interfaces[id];
    let name = interface.name.as_deref().unwrap_or("<anonymous>");
    match interface.package {
        Some(package) => {
            let package = &resolve.packages[package].name;
            format!("{}:{}/{name}", package.namespace, package.name)
        }
        None => name.to_string(),
    }
}

/// A resource as `ns:pkg/interface.name`: the same name elsewhere is another resource.
fn resource_name(resolve: &Resolve, id: TypeId) -> String {
    let ty = &resolve.types[id];
    let name = ty.name.as_deref().unwrap_or("<anonymous>");
    match ty.owner {
        wit_parser::TypeOwner::Interface(owner) => {
            format!("{}.{name}", interface_name(resolve, owner))
        }
        wit_parser::TypeOwner::World(world) => format!("{}.{name}", resolve.worlds[world].name),
        wit_parser::TypeOwner::None => name.to_string(),
    }
}

fn item_kind(item: &WorldItem) -> &'static str {
    match item {
        WorldItem::Interface { .. } => "an interface",
        WorldItem::Function(_) => "a function",
        WorldItem::Type { .. } => "a type",
    }
}

fn kind_name(kind: &FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Freestanding => "a function",
        FunctionKind::AsyncFreestanding => "an async function",
        FunctionKind::Getter | FunctionKind::MethodGetter(_) | FunctionKind::StaticGetter(_) => {
            "a getter"
        }
        FunctionKind::Setter | FunctionKind::MethodSetter(_) | FunctionKind::StaticSetter(_) => {
            "a setter"
        }
        FunctionKind::Method(_) => "a method",
        FunctionKind::AsyncMethod(_) => "an async method",
        FunctionKind::Static(_) => "a static function",
        FunctionKind::AsyncStatic(_) => "an async static function",
        FunctionKind::Constructor(_) => "a constructor",
    }
}

fn show_optional(resolve: &Resolve, ty: Option<Type>) -> String {
    ty.map_or_else(|| "_".to_string(), |ty| show(resolve, ty))
}

fn show_id(resolve: &Resolve, id: TypeId) -> String {
    show(resolve, Type::Id(id))
}

/// A type as WIT spells it, named types by their name.
fn show(resolve: &Resolve, ty: Type) -> String {
    let id = match ty {
        Type::Id(id) => id,
        primitive => return primitive_name(primitive).to_string(),
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    let one = |t: Type| show(resolve, t);
    match &def.kind {
        TypeDefKind::Type(t) => one(*t),
        TypeDefKind::Option(t) => format!("option<{}>", one(*t)),
        TypeDefKind::List(t) => format!("list<{}>", one(*t)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", one(*t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", one(*k), one(*v)),
        TypeDefKind::Tuple(t) => {
            format!("tuple<{}>", t.types.iter().map(|t| one(*t)).collect::<Vec<_>>().join(", "))
        }
        TypeDefKind::Result(r) => {
            format!("result<{}, {}>", show_optional(resolve, r.ok), show_optional(resolve, r.err))
        }
        TypeDefKind::Handle(Handle::Own(r)) => one(Type::Id(*r)),
        TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", one(Type::Id(*r))),
        TypeDefKind::Future(t) => format!("future<{}>", show_optional(resolve, *t)),
        TypeDefKind::Stream(t) => format!("stream<{}>", show_optional(resolve, *t)),
        other => other.as_str().to_string(),
    }
}

fn primitive_name(ty: Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S8 => "s8",
        Type::S16 => "s16",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        Type::Id(_) => "type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter().map(|v| v.parse().unwrap()).collect()
    }

    fn predecessor_of(version: &str, published: &[&str]) -> Option<String> {
        let published = versions(published);
        predecessor(&version.parse().unwrap(), &published).map(ToString::to_string)
    }

    #[test]
    fn the_baseline_is_the_newest_earlier_stable_release_of_the_series() {
        let published = ["0.1.0", "0.1.3", "0.2.0", "1.0.0", "1.4.0", "1.5.0-rc.1", "2.0.0"];
        assert_eq!(predecessor_of("1.5.0", &published).as_deref(), Some("1.4.0"));
        assert_eq!(predecessor_of("1.2.0", &published).as_deref(), Some("1.0.0"));
        assert_eq!(predecessor_of("1.5.0-rc.2", &published).as_deref(), Some("1.4.0"));
        assert_eq!(predecessor_of("0.1.4", &published).as_deref(), Some("0.1.3"));
        assert_eq!(predecessor_of("0.2.1", &published).as_deref(), Some("0.2.0"));
        assert_eq!(predecessor_of("0.3.0", &published), None);
        assert_eq!(predecessor_of("3.0.0", &published), None);
        assert_eq!(predecessor_of("1.0.0", &["0.9.0", "1.1.0"]), None);
        assert_eq!(predecessor_of("0.0.2", &["0.0.1"]), None);
    }

    #[test]
    fn the_next_breaking_version_starts_a_series() {
        let next = |v: &str| next_breaking(&v.parse().unwrap()).to_string();
        assert_eq!(next("1.4.2"), "2.0.0");
        assert_eq!(next("0.3.1"), "0.4.0");
        assert_eq!(next("0.0.7"), "0.0.8");
    }

    /// A resolve holding `deps` then `main`, and the id of `main`.
    fn package(main: &str, deps: &[&str]) -> (Resolve, PackageId) {
        let mut resolve = Resolve::default();
        for (i, dep) in deps.iter().enumerate() {
            resolve.push_str(format!("dep{i}.wit"), dep).unwrap();
        }
        let id = resolve.push_str("main.wit", main).unwrap();
        (resolve, id)
    }

    fn package_changes(old: &str, new: &str) -> Vec<String> {
        let ((a, a_id), (b, b_id)) = (package(old, &[]), package(new, &[]));
        compare_packages(&a, a_id, &b, b_id).iter().map(ToString::to_string).collect()
    }

    const SHAPES: &str = "package acme:shapes@1.0.0;
        interface geometry {
            record point { x: f32, y: f32 }
            variant shape { circle(f32), polygon(list<point>), empty }
            enum unit { mm, cm }
            flags edges { top, bottom }
            resource canvas {
                constructor(width: u32);
                draw: func(s: shape) -> result<_, string>;
            }
            area: func(s: shape, unit: unit) -> f64;
        }
        world app {
            import geometry;
            export run: func(args: list<string>) -> option<u32>;
        }";

    #[test]
    fn an_unchanged_or_extended_package_is_compatible() {
        assert_eq!(package_changes(SHAPES, SHAPES), Vec::<String>::new());
        let extended = SHAPES
            .replace("1.0.0", "1.1.0")
            .replace("area: func", "perimeter: func(s: shape) -> f64;\n area: func")
            .replace("enum unit", "type size = u64;\n enum unit")
            .replace("world app {", "world extra { export go: func(); }\n world app {");
        assert_eq!(package_changes(SHAPES, &extended), Vec::<String>::new());
    }

    #[test]
    fn a_new_export_of_a_world_breaks_its_implementations() {
        let more = SHAPES.replace("world app {", "world app {\n export stop: func();");
        assert_eq!(package_changes(SHAPES, &more), ["world `app`: export `stop` is new"]);
        let import = SHAPES.replace("world app {", "world app {\n import log: func();");
        assert_eq!(package_changes(SHAPES, &import), Vec::<String>::new());
    }

    #[test]
    fn changed_types_and_functions_are_named() {
        let cases = [
            (
                "x: f32, y: f32",
                "x: f64, y: f32",
                "type `point` changed: field `x`: `f32` became `f64`",
            ),
            ("x: f32, y: f32", "y: f32, x: f32", "fields `x, y` became `y, x`"),
            ("mm, cm", "mm, cm, m", "type `unit` changed: cases `mm, cm` became `mm, cm, m`"),
            ("top, bottom", "top", "type `edges` changed: flags `top, bottom` became `top`"),
            ("polygon(list<point>)", "polygon(list<u8>)", "case `polygon`: in `list<point>`"),
            ("-> f64;", "-> f32;", "function `area` changed: result: `f64` became `f32`"),
            ("unit: unit)", "units: unit)", "parameters `(s, unit)` became `(s, units)`"),
            ("result<_, string>", "result<_, u8>", "in `result<_, string>`: `string` became `u8`"),
            ("(width: u32)", "(width: u64)", "function `[constructor]canvas` changed"),
            ("-> option<u32>", "-> u32", "world `app`: export `run` changed"),
        ];
        for (before, after, expected) in cases {
            let changed = SHAPES.replace(before, after);
            let changes = package_changes(SHAPES, &changed);
            assert!(changes.iter().any(|c| c.contains(expected)), "{after}: {changes:?}");
        }
    }

    #[test]
    fn removed_items_are_breaking() {
        let changes = package_changes(SHAPES, &SHAPES.replace("area: func", "volume: func"));
        assert_eq!(changes, ["interface `acme:shapes/geometry`: function `area` was removed"]);
        let changes = package_changes(SHAPES, &SHAPES.replace("import geometry;", ""));
        assert_eq!(changes, ["world `app`: import `acme:shapes/geometry` was removed"]);
        let renamed = SHAPES
            .replace("interface geometry", "interface geo")
            .replace("import geometry", "import geo");
        let changes = package_changes(SHAPES, &renamed);
        assert!(changes.contains(&"interface `acme:shapes/geometry` was removed".to_string()));
    }

    const TEXT_1_0: &str = "package acme:text@1.0.0;
        interface types { enum case-style { lower, upper } }";
    const TEXT_1_1: &str = "package acme:text@1.1.0;
        interface types { enum case-style { lower, upper } record span { start: u32 } }";
    const TEXT_2_0: &str = "package acme:text@2.0.0;
        interface types { enum case-style { lower, title } }";
    const GREETING: &str = "package acme:greeting@1.0.0;
        world greeter {
            use acme:text/types@1.0.0.{case-style};
            export greet: func(name: string, style: case-style) -> string;
        }";

    #[test]
    fn foreign_packages_may_move_while_the_types_used_stay_the_same() {
        let (old, old_id) = package(GREETING, &[TEXT_1_0]);
        let moved = GREETING.replace("@1.0.0.", "@1.1.0.").replace("1.0.0", "1.1.0");
        let (new, new_id) = package(&moved, &[TEXT_1_1]);
        assert_eq!(compare_packages(&old, old_id, &new, new_id), Vec::new());

        let broken = GREETING.replace("@1.0.0.", "@2.0.0.").replace("1.0.0", "1.2.0");
        let (new, new_id) = package(&broken, &[TEXT_2_0]);
        let changes: Vec<String> =
            compare_packages(&old, old_id, &new, new_id).iter().map(ToString::to_string).collect();
        let expected = "world `greeter`: import `acme:text/types`: type `case-style` changed: \
                        cases `lower, upper` became `lower, title`";
        assert!(changes.contains(&expected.to_string()), "{changes:?}");
    }

    /// The world `name` of a package, standing in for the world a component decodes to.
    fn world(text: &str) -> (Resolve, WorldId) {
        let (resolve, id) = package(text, &[]);
        let world = resolve.select_world(&[id], Some("component")).unwrap();
        (resolve, world)
    }

    const COMPONENT: &str = "package root:component;
        interface clock { now: func() -> u64; }
        world component {
            import clock;
            export greet: func(name: string) -> string;
            export version: func() -> string;
        }";

    fn component_report(new: &str) -> (Vec<String>, Vec<String>) {
        let ((a, a_world), (b, b_world)) = (world(COMPONENT), world(new));
        let report = compare_components(&a, a_world, &b, b_world);
        let strings = |changes: &[Change]| changes.iter().map(ToString::to_string).collect();
        (strings(&report.breaking), strings(&report.requirements))
    }

    #[test]
    fn components_break_on_exports_and_only_report_imports() {
        assert_eq!(component_report(COMPONENT), (vec![], vec![]));

        let more = COMPONENT.replace("export version", "export extra: func();\n export version");
        assert_eq!(component_report(&more), (vec![], vec![]));

        let fewer = COMPONENT.replace("export version: func() -> string;", "");
        assert_eq!(component_report(&fewer).0, ["export `version` was removed"]);

        let changed = COMPONENT.replace("(name: string) -> string", "(name: string) -> u8");
        assert_eq!(
            component_report(&changed).0,
            ["export `greet` changed: result: `string` became `u8`"]
        );

        let needs_more = COMPONENT
            .replace(
                "interface clock",
                "interface random { next: func() -> u64; }\n interface clock",
            )
            .replace("import clock;", "import clock;\n import random;");
        assert_eq!(
            component_report(&needs_more),
            (vec![], vec!["import `root:component/random` is new".to_string()])
        );
        let needs_less = COMPONENT.replace("import clock;", "");
        assert_eq!(component_report(&needs_less), (vec![], vec![]));
    }

    #[test]
    fn binary_releases_are_decoded_and_compared() {
        let encode = |text: &str| {
            let (resolve, id) = package(text, &[]);
            wit_component::encode(&resolve, id, false).unwrap()
        };
        let old = encode(SHAPES);
        let new = encode(&SHAPES.replace("1.0.0", "1.1.0").replace("x: f32", "x: f64"));
        let report = compare(&old, &new).unwrap();
        let breaking: Vec<String> = report.breaking.iter().map(ToString::to_string).collect();
        let geometry = "interface `acme:shapes/geometry`";
        let expected = [
            "type `point` changed: field `x`: `f32` became `f64`",
            "type `shape` changed: case `polygon`: in `list<point>`: `point` changed",
            "function `[method]canvas.draw` changed: parameter `s`: `shape` changed",
            "function `area` changed: parameter `s`: `shape` changed",
        ];
        let expected: Vec<String> = expected.iter().map(|e| format!("{geometry}: {e}")).collect();
        assert_eq!(breaking, expected);
        assert!(report.requirements.is_empty());
        assert!(compare(&old, b"not wasm").is_err());
    }
}
