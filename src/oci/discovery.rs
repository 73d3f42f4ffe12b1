//! Registry discovery: a Wasm package registry name such as `wasi.dev` says where its packages
//! live over OCI in `https://<name>/.well-known/wasm-pkg/registry.json`. The answer is cached
//! for the life of the process; a name without that document is an OCI registry itself.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::transport::{self, Request};
use crate::Help;
use crate::registry::Registry;

pub const METADATA_PATH: &str = "/.well-known/wasm-pkg/registry.json";
const METADATA_LIMIT: u64 = 1 << 20;

/// The registry metadata document, in its current form (`oci` object) and the deprecated one
/// (`ociRegistry`, `ociNamespacePrefix`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryMetadata {
    preferred_protocol: Option<String>,
    oci: Option<OciMetadata>,
    oci_registry: Option<String>,
    oci_namespace_prefix: Option<String>,
    warg: Option<serde_json::Value>,
    warg_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciMetadata {
    registry: Option<String>,
    namespace_prefix: Option<String>,
}

impl RegistryMetadata {
    pub fn parse(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).context("the registry metadata is not valid JSON")
    }

    /// Where `name` keeps its packages over OCI. `insecure` (from the `protocol`
    /// configuration) picks the scheme; without it, the loopback rule does.
    pub fn location(&self, name: &Registry, insecure: Option<bool>) -> Result<Registry> {
        let oci = self.oci.clone().unwrap_or_default();
        let host = oci.registry.or_else(|| self.oci_registry.clone());
        let prefix = oci.namespace_prefix.or_else(|| self.oci_namespace_prefix.clone());
        let speaks_oci = self.oci.is_some() || host.is_some() || prefix.is_some();
        let preferred = self.preferred_protocol.as_deref();
        if !speaks_oci && (preferred.is_some_and(|p| p != "oci") || self.speaks_warg()) {
            return Err(Help::error(
                format!(
                    "registry `{name}` serves its packages over `{}` only, and cargo-wreg speaks \
                     OCI",
                    preferred.unwrap_or("warg")
                ),
                "use a registry that offers the OCI protocol, or map the namespace to one",
            ));
        }
        let host = host.unwrap_or_else(|| name.host().to_string());
        Registry::located(&host, prefix.as_deref(), insecure)
            .with_context(|| format!("invalid OCI location in the metadata of `{name}`"))
    }

    fn speaks_warg(&self) -> bool {
        self.warg.is_some() || self.warg_url.is_some()
    }
}

type Cache = Mutex<HashMap<String, Arc<OnceCell<Registry>>>>;

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);

/// The OCI registry behind `name`, asking `name` at most once per process. A name with a
/// path prefix (`ghcr.io/acme`) already is an OCI location and is not asked.
pub async fn discover(
    http: &reqwest::Client,
    name: &Registry,
    insecure: Option<bool>,
) -> Result<Registry> {
    if name.prefix().is_some() {
        return Ok(same_place(name, insecure));
    }
    let key = format!("{} {insecure:?}", name.base_url());
    let cell = {
        let mut cache = CACHE.lock().map_err(|_| anyhow::anyhow!("discovery cache poisoned"))?;
        cache.entry(key).or_default().clone()
    };
    let found = cell.get_or_try_init(|| fetch(http, name, insecure)).await?;
    Ok(found.clone())
}

async fn fetch(
    http: &reqwest::Client,
    name: &Registry,
    insecure: Option<bool>,
) -> Result<Registry> {
    let base = match insecure {
        Some(insecure) => name.clone().with_insecure(insecure).base_url(),
        None => name.base_url(),
    };
    let url = Url::parse(&format!("{base}{METADATA_PATH}"))
        .with_context(|| format!("invalid registry URL `{base}`"))?;
    let request = Request::new(Method::GET, url.clone())
        .header(reqwest::header::ACCEPT, "application/json")?;
    let response = transport::send(http, &request, None)
        .await
        .with_context(|| format!("failed to discover where `{name}` keeps its packages"))?;
    let status = response.status();
    let headers = response.headers().clone();
    if status.is_client_error() {
        tracing::debug!("{url} answered {status}; `{name}` is used as an OCI registry");
        return Ok(same_place(name, insecure));
    }
    if status != StatusCode::OK {
        bail!("failed to discover where `{name}` keeps its packages: `{url}` answered {status}");
    }
    let body = transport::read_body(response, METADATA_LIMIT, None).await?;
    if transport::is_html(&headers, &body) {
        // Registry web front ends answer every path with their page; that is no metadata.
        tracing::debug!("{url} is a web page; `{name}` is used as an OCI registry");
        return Ok(same_place(name, insecure));
    }
    let location = RegistryMetadata::parse(&body)
        .and_then(|metadata| metadata.location(name, insecure))
        .map_err(|err| not_metadata(err, name, &url))?;
    tracing::debug!("`{name}` keeps its packages at `{location}`");
    Ok(location)
}

fn same_place(name: &Registry, insecure: Option<bool>) -> Registry {
    match insecure {
        Some(insecure) => name.clone().with_insecure(insecure),
        None => name.clone(),
    }
}

fn not_metadata(err: anyhow::Error, name: &Registry, url: &Url) -> anyhow::Error {
    if err.downcast_ref::<Help>().is_some() {
        return err;
    }
    let help = format!(
        "`{url}` should describe the registry in JSON; ask its operators to fix it, or give the \
         OCI registry directly (for example `--registry ghcr.io/org`)"
    );
    Help::error(format!("registry `{name}` published invalid metadata at `{url}`: {err:#}"), help)
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;

    use super::*;
    use crate::package::PackageName;

    fn name(s: &str) -> Registry {
        s.parse().unwrap()
    }

    fn located(json: &str, registry: &str) -> Result<Registry> {
        RegistryMetadata::parse(json.as_bytes())?.location(&name(registry), None)
    }

    #[test]
    fn current_and_deprecated_documents_give_the_oci_location() {
        let http: PackageName = "wasi:http".parse().unwrap();
        let current = r#"{"preferredProtocol": "oci",
            "oci": {"registry": "ghcr.io", "namespacePrefix": "webassembly/"}}"#;
        let location = located(current, "wasi.dev").unwrap();
        assert_eq!(
            format!("{}/{}", location.host(), location.repository(&http)),
            "ghcr.io/webassembly/wasi/http"
        );
        let deprecated = r#"{"ociRegistry": "ghcr.io", "ociNamespacePrefix": "webassembly/"}"#;
        assert_eq!(located(deprecated, "wasi.dev").unwrap(), location);
        let same_host = located(r#"{"oci": {"namespacePrefix": "pkgs"}}"#, "example.com").unwrap();
        assert_eq!(same_host.to_string(), "example.com/pkgs");
    }

    #[test]
    fn warg_only_registries_are_refused() {
        let err = located(r#"{"wargUrl": "https://warg.example.com"}"#, "example.com").unwrap_err();
        assert!(err.to_string().contains("`warg` only"), "{err}");
        assert!(located("[1, 2]", "example.com").is_err());
    }

    async fn serve(router: Router) -> Registry {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    #[tokio::test]
    async fn documents_are_fetched_once_and_missing_ones_fall_back() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = calls.clone();
        let doc = move || async move {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r#"{"oci": {"registry": "127.0.0.1:1", "namespacePrefix": "mirror/"}}"#
        };
        let registry = serve(Router::new().route(METADATA_PATH, get(doc))).await;
        let http = transport::http_client().unwrap();
        for _ in 0..2 {
            let location = discover(&http, &registry, None).await.unwrap();
            assert_eq!(location.to_string(), "127.0.0.1:1/mirror");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        let missing = serve(Router::new()).await;
        assert_eq!(discover(&http, &missing, None).await.unwrap(), missing);
        let prefixed = name("127.0.0.1:1/acme");
        assert_eq!(discover(&http, &prefixed, None).await.unwrap(), prefixed, "no request made");
    }

    #[tokio::test]
    async fn documents_that_are_not_json_are_errors_and_web_pages_are_not() {
        let garbage =
            serve(Router::new().route(METADATA_PATH, get(|| async { "oci = yes" }))).await;
        let http = transport::http_client().unwrap();
        let err = discover(&http, &garbage, None).await.unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!("registry `{garbage}` published invalid metadata")),
            "{message}"
        );
        assert!(message.contains("not valid JSON"), "{message}");

        let page = axum::response::Html("<html>registry UI</html>");
        let web = serve(Router::new().fallback(move || async move { page })).await;
        assert_eq!(discover(&http, &web, None).await.unwrap(), web);

        let broken = serve(Router::new().fallback(|| async { StatusCode::NOT_IMPLEMENTED })).await;
        assert!(discover(&http, &broken, None).await.is_err());
    }
}
