//! The CNCF Wasm OCI artifact layout, as `wkg` pushes it: an OCI image manifest with a
//! `application/vnd.wasm.config.v0+json` config and one `application/wasm` layer. Builds the
//! blobs of an artifact and validates manifests read from registries; no I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wasmparser::{ComponentExternalKind, Encoding, Parser, Payload};
use wit_component::DecodedWasm;

use crate::digest::Digest;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";

pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const LICENSES: &str = "org.opencontainers.image.licenses";
pub const SOURCE: &str = "org.opencontainers.image.source";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const AUTHORS: &str = "org.opencontainers.image.authors";
pub const URL: &str = "org.opencontainers.image.url";

/// A reference from a manifest to a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// Describes `blob` as having `media_type`.
    pub fn of(media_type: &str, blob: &[u8]) -> Self {
        let size = blob.len() as u64;
        Self {
            media_type: media_type.into(),
            digest: Digest::of(blob),
            size,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Just enough of any manifest-like document to tell what kind it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

impl ImageManifest {
    /// Parses a manifest as served with `content_type`, and checks that it is a Wasm artifact.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self> {
        let probe: Probe =
            serde_json::from_slice(body).context("the manifest is not valid JSON")?;
        let header = content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim());
        let media_type = probe.media_type.as_deref().or(header).unwrap_or(MANIFEST_MEDIA_TYPE);
        if probe.manifests.is_some()
            || [INDEX_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE].contains(&media_type)
        {
            bail!(
                "expected a Wasm artifact manifest, found an image index (`{media_type}`); \
                 multi-platform images are not Wasm packages"
            );
        }
        if media_type != MANIFEST_MEDIA_TYPE {
            bail!(
                "unsupported manifest media type `{media_type}`, expected `{MANIFEST_MEDIA_TYPE}`"
            );
        }
        let manifest: Self = serde_json::from_slice(body).context("invalid OCI image manifest")?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        if self.schema_version != 2 {
            bail!("unsupported manifest schema version {}, expected 2", self.schema_version);
        }
        if self.config.media_type != CONFIG_MEDIA_TYPE {
            bail!(
                "the manifest's config has media type `{}`, expected `{CONFIG_MEDIA_TYPE}`; \
                 this is not a Wasm OCI artifact",
                self.config.media_type
            );
        }
        self.wasm_layer().map(drop)
    }

    /// The one `application/wasm` layer.
    ///
    /// Other layers are tolerated: nothing here reads them, and tools have attached extra
    /// layers to artifacts before. Zero or several wasm layers leave no way to pick, so those
    /// are errors.
    pub fn wasm_layer(&self) -> Result<&Descriptor> {
        let mut wasm = self.layers.iter().filter(|l| l.media_type == LAYER_MEDIA_TYPE);
        match (wasm.next(), wasm.next()) {
            (Some(layer), None) => Ok(layer),
            (first, _) => {
                let found: Vec<_> =
                    self.layers.iter().map(|l| format!("`{}`", l.media_type)).collect();
                let count = if first.is_some() { "several" } else { "no" };
                bail!(
                    "the manifest has {count} `{LAYER_MEDIA_TYPE}` layers, expected exactly one \
                     (layers found: {})",
                    if found.is_empty() { "none".to_string() } else { found.join(", ") }
                )
            }
        }
    }
}

/// The config blob of a Wasm artifact, field for field what `oci-wasm` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub layer_digests: Vec<Digest>,
    pub component: Option<ComponentInfo>,
}

/// What a component imports and exports, in the config's `component` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub target: Option<String>,
}

impl ComponentInfo {
    /// Reads the names from `wasm`, which must be a component or a WIT package. A component
    /// lists its top-level imports and exports. A WIT package (a component exporting only
    /// types) lists what `wkg` lists: its interfaces, its worlds and the worlds' exports.
    pub fn of(wasm: &[u8]) -> Result<Self> {
        let mut info = Self { exports: Vec::new(), imports: Vec::new(), target: None };
        let mut only_types = true;
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.context("invalid WebAssembly binary")? {
                Payload::Version { encoding: Encoding::Module, .. } if depth == 0 => {
                    bail!("this is a core WebAssembly module, not a component or WIT package")
                }
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentImportSection(imports) if depth == 0 => {
                    for import in imports {
                        let import = import.context("invalid component import")?;
                        info.imports.push(import.name.full_name().into_owned());
                    }
                }
                Payload::ComponentExportSection(exports) if depth == 0 => {
                    for export in exports {
                        let export = export.context("invalid component export")?;
                        only_types &= export.kind == ComponentExternalKind::Type;
                        info.exports.push(export.name.full_name().into_owned());
                    }
                }
                _ => {}
            }
        }
        if only_types && info.imports.is_empty() && !info.exports.is_empty() {
            return Self::of_wit_package(wasm, info);
        }
        Ok(info)
    }

    fn of_wit_package(wasm: &[u8], top_level: Self) -> Result<Self> {
        let (resolve, id) = match wit_component::decode(wasm).context("invalid WIT package")? {
            DecodedWasm::WitPackage(resolve, id) => (resolve, id),
            DecodedWasm::Component(..) => return Ok(top_level),
        };
        let package = &resolve.packages[id];
        let mut exports = BTreeSet::new();
        for (name, &world) in &package.worlds {
            exports.extend(resolve.worlds[world].exports.keys().map(|k| resolve.name_world_key(k)));
            exports.insert(package.name.interface_id(name));
        }
        exports.extend(package.interfaces.values().filter_map(|&i| resolve.id_of(i)));
        Ok(Self { exports: exports.into_iter().collect(), imports: Vec::new(), target: None })
    }
}

/// Everything pushed for one release: the wasm layer, the config and the manifest tying them.
#[derive(Debug, Clone)]
pub struct Artifact {
    wasm: Bytes,
    config: Bytes,
    manifest: Bytes,
    manifest_digest: Digest,
    layer: Descriptor,
    config_desc: Descriptor,
}

impl Artifact {
    /// Lays out `wasm` (a component or WIT package) as a Wasm artifact created now, with the
    /// layer titled `title` (a file name such as `hello.wasm`), the manifest carrying
    /// `annotations` and the config naming the world a component `target`s, when known.
    pub fn new(
        wasm: &[u8],
        title: &str,
        annotations: BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Self> {
        Self::with_created(wasm, title, annotations, target, SystemTime::now())
    }

    /// As [`Artifact::new`] with a fixed creation time, which makes the bytes reproducible.
    /// The time also becomes the `created` manifest annotation unless one is given.
    pub fn with_created(
        wasm: &[u8],
        title: &str,
        mut annotations: BTreeMap<String, String>,
        target: Option<&str>,
        created: SystemTime,
    ) -> Result<Self> {
        if title.is_empty() || title.contains(['/', '\\']) {
            bail!("invalid layer title `{title}`: expected a file name such as `hello.wasm`");
        }
        let mut component =
            ComponentInfo::of(wasm).context("failed to read the wasm to publish")?;
        component.target = target.map(str::to_string);
        let created = rfc3339(created);
        let mut layer = Descriptor::of(LAYER_MEDIA_TYPE, wasm);
        layer.annotations.insert(TITLE.into(), title.into());

        let config = WasmConfig {
            created: created.clone(),
            architecture: "wasm".into(),
            os: "wasip2".into(),
            layer_digests: vec![layer.digest.clone()],
            component: Some(component),
        };
        let config = Bytes::from(serde_json::to_vec(&config).context("failed to encode config")?);
        let config_desc = Descriptor::of(CONFIG_MEDIA_TYPE, &config);

        annotations.entry(CREATED.into()).or_insert(created);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: config_desc.clone(),
            layers: vec![layer.clone()],
            annotations,
        };
        let manifest =
            Bytes::from(serde_json::to_vec(&manifest).context("failed to encode manifest")?);
        let manifest_digest = Digest::of(&manifest);
        Ok(Self {
            wasm: Bytes::copy_from_slice(wasm),
            config,
            manifest,
            manifest_digest,
            layer,
            config_desc,
        })
    }

    pub fn wasm(&self) -> &Bytes {
        &self.wasm
    }

    pub fn config(&self) -> &Bytes {
        &self.config
    }

    pub fn manifest(&self) -> &Bytes {
        &self.manifest
    }

    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }

    pub fn layer(&self) -> &Descriptor {
        &self.layer
    }

    pub fn config_desc(&self) -> &Descriptor {
        &self.config_desc
    }
}

/// Formats `time` as RFC 3339 in UTC to the second, such as `2024-05-01T12:00:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    // A clock before 1970 is broken; the epoch is as good a wrong answer as any.
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in 400-year eras that start
/// on March 1st so that the leap day falls at the end of each year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use wit_parser::Resolve;

    use super::*;

    pub(in crate::oci) fn wit_package() -> Vec<u8> {
        let wit = "package acme:text@1.0.0;
            interface upper { upper: func(s: string) -> string; }
            world hello { import upper; export run: func(); }";
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("text.wit", wit).unwrap();
        wit_component::encode(&resolve, pkg, false).unwrap()
    }

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        [&[id, body.len() as u8][..], body].concat()
    }

    fn name(name: &str) -> Vec<u8> {
        [&[0, name.len() as u8][..], name.as_bytes()].concat()
    }

    /// A component importing an instance and exporting a function, with a nested component
    /// whose import must not be listed. Only parsed, never validated, so indices are loose.
    fn component() -> Vec<u8> {
        let header = b"\0asm\x0d\0\x01\0";
        let nested =
            [&header[..], &section(10, &[[1].as_slice(), &name("inner:x/y"), &[5, 0]].concat())]
                .concat();
        let import = [[1].as_slice(), &name("acme:text/upper@1.0.0"), &[5, 0]].concat();
        let export = [[1].as_slice(), &name("run"), &[1, 0, 0]].concat();
        let sections = [section(4, &nested), section(7, &[1, 0x42, 0]), section(10, &import)];
        [header.to_vec(), sections.concat(), section(11, &export)].concat()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_rfc3339_dates() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(at(4_102_444_800)), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn lists_component_imports_and_exports() {
        let info = ComponentInfo::of(&component()).unwrap();
        assert_eq!(info.imports, ["acme:text/upper@1.0.0"]);
        assert_eq!(info.exports, ["run"]);
    }

    #[test]
    fn lists_wit_package_interfaces_and_worlds_as_exports() {
        let info = ComponentInfo::of(&wit_package()).unwrap();
        assert!(info.imports.is_empty());
        assert_eq!(info.exports, ["acme:text/hello@1.0.0", "acme:text/upper@1.0.0", "run"]);
    }

    #[test]
    fn rejects_core_modules_and_garbage() {
        let err = ComponentInfo::of(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.to_string().contains("core WebAssembly module"), "{err}");
        assert!(ComponentInfo::of(b"not wasm").is_err());
    }

    #[test]
    fn artifacts_are_deterministic_and_parse_back() {
        let wasm = wit_package();
        let notes = BTreeMap::from([(VERSION.to_string(), "1.0.0".to_string())]);
        let a = Artifact::with_created(&wasm, "text.wasm", notes.clone(), None, at(0)).unwrap();
        let b = Artifact::with_created(&wasm, "text.wasm", notes.clone(), None, at(0)).unwrap();
        assert_eq!(a.manifest(), b.manifest());
        assert_eq!(a.manifest_digest(), &Digest::of(a.manifest()));

        let config: WasmConfig = serde_json::from_slice(a.config()).unwrap();
        assert_eq!((config.architecture.as_str(), config.os.as_str()), ("wasm", "wasip2"));
        assert_eq!(config.created, "1970-01-01T00:00:00Z");
        assert_eq!(config.layer_digests, [Digest::of(&wasm)]);
        let json: serde_json::Value = serde_json::from_slice(a.config()).unwrap();
        assert!(json["component"]["target"].is_null() && json.get("layerDigests").is_some());
        let world = Some("acme:text/base@1.0.0");
        let targeted = Artifact::with_created(&wasm, "text.wasm", notes, world, at(0)).unwrap();
        let json: serde_json::Value = serde_json::from_slice(targeted.config()).unwrap();
        assert_eq!(json["component"]["target"], "acme:text/base@1.0.0");

        let manifest = ImageManifest::parse(a.manifest(), None).unwrap();
        assert_eq!(manifest.wasm_layer().unwrap(), a.layer());
        assert_eq!(a.layer().annotations[TITLE], "text.wasm");
        assert_eq!(manifest.annotations[VERSION], "1.0.0");
        assert_eq!(manifest.annotations[CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(&manifest.config, a.config_desc());
    }

    fn manifest_json(config_type: &str, layer_types: &[&str]) -> Vec<u8> {
        let digest = Digest::of(b"");
        let layer = |t: &&str| serde_json::json!({"mediaType": t, "digest": digest, "size": 0});
        let layers: Vec<_> = layer_types.iter().map(layer).collect();
        let config = layer(&config_type);
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "config": config, "layers": layers}),
        )
        .unwrap()
    }

    fn parse_error(body: &[u8], content_type: Option<&str>) -> String {
        format!("{:#}", ImageManifest::parse(body, content_type).unwrap_err())
    }

    #[test]
    fn rejects_image_indexes() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(parse_error(index, None).contains("image index"));
        let body = manifest_json(CONFIG_MEDIA_TYPE, &[LAYER_MEDIA_TYPE]);
        assert!(parse_error(&body, Some(DOCKER_LIST_MEDIA_TYPE)).contains(DOCKER_LIST_MEDIA_TYPE));
    }

    #[test]
    fn rejects_foreign_configs_and_layer_counts() {
        let docker = manifest_json("application/vnd.docker.container.image.v1+json", &[]);
        assert!(parse_error(&docker, None).contains("`application/vnd.docker.container.image"));
        let none = manifest_json(CONFIG_MEDIA_TYPE, &["text/plain"]);
        assert!(parse_error(&none, None).contains("no `application/wasm` layers"));
        let two = manifest_json(CONFIG_MEDIA_TYPE, &[LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPE]);
        assert!(parse_error(&two, None).contains("several"));
        let extra = manifest_json(CONFIG_MEDIA_TYPE, &["text/plain", LAYER_MEDIA_TYPE]);
        assert!(ImageManifest::parse(&extra, Some(MANIFEST_MEDIA_TYPE)).is_ok());
    }
}
