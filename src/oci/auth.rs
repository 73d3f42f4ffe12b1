//! Registry authentication: where credentials come from (the configuration, the environment,
//! Docker's config file and credential helpers) and how they are used (Basic, or the Bearer
//! token flow that answers a `401` challenge, anonymous tokens included).
//!
//! Nothing is looked up before a registry asks, and no secret ever reaches a log line or an
//! error message: `Secret` has no `Display` and a redacted `Debug`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use super::transport::{self, Request};
use crate::Help;

/// The environment variable CI jobs put a registry token (or personal access token) in.
pub const TOKEN_ENV: &str = "CARGO_WREG_REGISTRY_TOKEN";
/// The user name that goes with it, for registries that check it (GHCR does not).
pub const USERNAME_ENV: &str = "CARGO_WREG_REGISTRY_USERNAME";
/// The source of credentials `cargo wreg login` is trying, before it saves them.
pub const LOGIN_SOURCE: &str = "the login";
/// What the token flow calls us; registries log it.
const CLIENT_ID: &str = "cargo-wreg";
/// The distribution spec's default lifetime of a token that does not say.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire, so a request never carries a dying one.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const TOKEN_BODY_LIMIT: u64 = 1 << 20;

/// A password or token. Shown nowhere: `Debug` prints a placeholder and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a client can prove its identity with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name with a password or personal access token.
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token, which Docker keeps as `identitytoken`.
    Identity(Secret),
}

/// A credential and where it was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub credential: Credential,
    pub source: String,
}

impl Credentials {
    pub fn basic(username: &str, password: Secret, source: impl Into<String>) -> Self {
        let credential = Credential::Basic { username: username.to_string(), password };
        Self { credential, source: source.into() }
    }

    /// `CARGO_WREG_REGISTRY_TOKEN` (with `CARGO_WREG_REGISTRY_USERNAME`), if set.
    pub fn from_env() -> Option<Self> {
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty())?;
        let username = std::env::var(USERNAME_ENV).unwrap_or_else(|_| CLIENT_ID.to_string());
        Some(Self::basic(&username, Secret::new(token.trim()), format!("`{TOKEN_ENV}`")))
    }

    /// What to suggest when a registry at `host` rejected these credentials.
    pub fn rejected_help(&self, host: &str) -> String {
        let check = "check the user name and the password or token (an expired token must be \
                     renewed)";
        if self.source == LOGIN_SOURCE {
            format!("{check}; nothing was saved")
        } else {
            format!("{check}; `cargo wreg login {host}` stores new credentials")
        }
    }

    /// Says whose credentials these are without showing them.
    pub fn describe(&self) -> String {
        match &self.credential {
            Credential::Basic { username, .. } => {
                format!("the credentials of `{username}` from {}", self.source)
            }
            Credential::Identity(_) => format!("the identity token from {}", self.source),
        }
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let Credential::Basic { username, password } = &self.credential else { return None };
        let encoded = STANDARD.encode(format!("{username}:{}", password.expose()));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// What a request needs access to, in the terms of the token flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub repository: Option<String>,
    pub push: bool,
    /// The repository a blob is mounted from, which needs pull access too.
    pub mount_from: Option<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Self {
        Self { repository: Some(repository.to_string()), ..Self::default() }
    }

    pub fn push(repository: &str) -> Self {
        Self { push: true, ..Self::pull(repository) }
    }

    fn scopes(&self) -> Vec<String> {
        let mut scopes = Vec::new();
        if let Some(repository) = &self.repository {
            let actions = if self.push { "pull,push" } else { "pull" };
            scopes.push(format!("repository:{repository}:{actions}"));
        }
        if let Some(from) = &self.mount_from {
            scopes.push(format!("repository:{from}:pull"));
        }
        scopes
    }

    fn key(&self) -> String {
        self.scopes().join(" ")
    }
}

/// A parsed `WWW-Authenticate` challenge: `Bearer realm="..",service="..",scope=".."`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: BTreeMap<String, String>,
}

impl Challenge {
    /// Reads the first challenge of a header value. Parameters are `key=token` or
    /// `key="quoted string"`; a quoted scope may itself contain commas.
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, mut rest) = value.split_once(' ').unwrap_or((value, ""));
        let mut params = BTreeMap::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else { break };
            if key.contains([' ', ',']) {
                break;
            }
            let (param, remainder) = parse_param_value(after)?;
            params.insert(key.trim().to_ascii_lowercase(), param);
            rest = remainder;
        }
        Some(Self { scheme: scheme.to_ascii_lowercase(), params })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn parse_param_value(input: &str) -> Option<(String, &str)> {
    let Some(quoted) = input.strip_prefix('"') else {
        let end = input.find(',').unwrap_or(input.len());
        return Some((input[..end].trim().to_string(), &input[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &quoted[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// A bearer token and when to stop using it.
struct Token {
    value: HeaderValue,
    expires: Instant,
}

#[derive(Default)]
struct State {
    /// The registry asked for Basic authentication; send it with every request from now on.
    basic: bool,
    tokens: HashMap<String, Token>,
}

/// The authentication state of one client with one OCI registry host.
pub struct Session {
    host: String,
    configured: Option<Credentials>,
    found: OnceCell<Option<Credentials>>,
    state: Mutex<State>,
}

impl Session {
    /// `configured` credentials (from the configuration or the environment) are used first;
    /// without them, Docker's are looked up when the registry first asks.
    pub fn new(host: &str, configured: Option<Credentials>) -> Self {
        let host = host.to_string();
        Self { host, configured, found: OnceCell::new(), state: Mutex::new(State::default()) }
    }

    /// The credentials in use, looking them up on first call.
    pub async fn credentials(&self) -> Option<&Credentials> {
        if self.configured.is_some() {
            return self.configured.as_ref();
        }
        self.found.get_or_init(|| docker_credentials(&self.host)).await.as_ref()
    }

    /// The credentials looked up so far, without looking.
    pub fn known_credentials(&self) -> Option<&Credentials> {
        self.configured.as_ref().or_else(|| self.found.get().and_then(Option::as_ref))
    }

    /// The `Authorization` header for a request with `scope`, if one is known.
    pub fn authorization(&self, scope: &Scope) -> Option<HeaderValue> {
        let Ok(mut state) = self.state.lock() else { return None };
        if state.basic {
            return self.known_credentials().and_then(Credentials::basic_header);
        }
        let now = Instant::now();
        state.tokens.retain(|_, token| token.expires > now);
        let wider = Scope { push: true, ..scope.clone() };
        let token = state.tokens.get(&scope.key()).or_else(|| state.tokens.get(&wider.key()));
        token.map(|t| t.value.clone())
    }

    /// Answers the challenge of a `401` response. Returns whether sending the request again
    /// can succeed: false when the registry asks for something we cannot give.
    pub async fn answer(
        &self,
        http: &reqwest::Client,
        headers: &HeaderMap,
        scope: &Scope,
    ) -> Result<bool> {
        let challenge = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .find(|c| matches!(c.scheme.as_str(), "bearer" | "basic"));
        let Some(challenge) = challenge else { return Ok(false) };
        if challenge.scheme == "basic" {
            let usable = self.credentials().await.is_some_and(|c| c.basic_header().is_some());
            if let Ok(mut state) = self.state.lock() {
                state.basic = usable;
            }
            return Ok(usable);
        }
        let token = self.bearer_token(http, &challenge, scope).await?;
        if let Ok(mut state) = self.state.lock() {
            state.tokens.insert(scope.key(), token);
        }
        Ok(true)
    }

    /// Fetches a token for `scope`; when the credentials are refused for a pull, an anonymous
    /// token is tried, since public content needs none and a stale login should not block it.
    async fn bearer_token(
        &self,
        http: &reqwest::Client,
        challenge: &Challenge,
        scope: &Scope,
    ) -> Result<Token> {
        let realm = challenge.param("realm").with_context(|| {
            format!("`{}` asked for a token without saying where (no realm)", self.host)
        })?;
        let realm = Url::parse(realm).with_context(|| format!("invalid token realm `{realm}`"))?;
        let mut scopes = scope.scopes();
        for extra in challenge.param("scope").into_iter().flat_map(|s| s.split(' ')) {
            if !extra.is_empty() && !scopes.iter().any(|s| s == extra) {
                scopes.push(extra.to_string());
            }
        }
        let service = challenge.param("service");
        let credentials = self.credentials().await;
        let result = fetch_token(http, &realm, service, &scopes, credentials).await;
        match (result, credentials) {
            (Ok(token), _) => Ok(token),
            (Err(TokenError::Refused(status)), Some(credentials)) if !scope.push => {
                tracing::debug!("token service refused {}: {status}", credentials.describe());
                fetch_token(http, &realm, service, &scopes, None)
                    .await
                    .map_err(|err| self.token_error(err, Some(credentials)))
            }
            (Err(err), credentials) => Err(self.token_error(err, credentials)),
        }
    }

    fn token_error(&self, err: TokenError, credentials: Option<&Credentials>) -> anyhow::Error {
        match (err, credentials) {
            (TokenError::Refused(status), Some(credentials)) => Help::error(
                format!(
                    "`{}` rejected {}: its token service answered {status}",
                    self.host,
                    credentials.describe()
                ),
                credentials.rejected_help(&self.host),
            ),
            (TokenError::Refused(status), None) => {
                self.missing_credentials(&format!("its token service answered {status}"))
            }
            (TokenError::Other(err), _) => {
                err.context(format!("failed to get an access token for `{}`", self.host))
            }
        }
    }

    /// The error for a registry that wants credentials we do not have; `answered` says what
    /// it answered.
    pub fn missing_credentials(&self, answered: &str) -> anyhow::Error {
        Help::error(
            format!(
                "{answered}; `{}` requires authentication, which is not configured for it",
                self.host
            ),
            format!(
                "run `cargo wreg login {}`, set `{TOKEN_ENV}`, or add credentials to the Docker \
                 config or to `[registry.\"{}\".oci] auth` in the wasm-pkg config",
                self.host, self.host
            ),
        )
    }
}

enum TokenError {
    /// The token service said no (401 or 403).
    Refused(StatusCode),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for TokenError {
    fn from(err: anyhow::Error) -> Self {
        Self::Other(err)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Asks the token service at `realm` for a token covering `scopes`: anonymously, with Basic
/// credentials (GET), or with a refresh token (the OAuth2 POST form).
async fn fetch_token(
    http: &reqwest::Client,
    realm: &Url,
    service: Option<&str>,
    scopes: &[String],
    credentials: Option<&Credentials>,
) -> Result<Token, TokenError> {
    let mut auth = None;
    let request = match credentials.map(|c| &c.credential) {
        Some(Credential::Identity(refresh)) => {
            // TODO: test the refresh-token grant against a real token service.
            let mut form = Url::parse("form:").map_err(anyhow::Error::from)?;
            form.query_pairs_mut()
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", CLIENT_ID)
                .append_pair("refresh_token", refresh.expose())
                .append_pair("service", service.unwrap_or_default())
                .append_pair("scope", &scopes.join(" "));
            let body = form.query().unwrap_or_default().to_string();
            Request::new(Method::POST, realm.clone())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")?
                .body(body.into())
        }
        basic => {
            let mut url = realm.clone();
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
            if let Some(Credential::Basic { username, .. }) = basic {
                query.append_pair("account", username).append_pair("client_id", CLIENT_ID);
                auth = credentials.and_then(Credentials::basic_header);
            }
            drop(query);
            Request::new(Method::GET, url)
        }
    };
    let response = transport::send(http, &request, auth.as_ref()).await?;
    let status = response.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(TokenError::Refused(status));
    }
    if !status.is_success() {
        return Err(anyhow!("the token service at `{realm}` answered {status}").into());
    }
    let body = transport::read_body(response, TOKEN_BODY_LIMIT, None).await?;
    parse_token(&body).map_err(|err| err.context(format!("invalid answer from `{realm}`")).into())
}

fn parse_token(body: &[u8]) -> Result<Token> {
    let parsed: TokenResponse = serde_json::from_slice(body).context("the token is not JSON")?;
    let value = parsed.token.or(parsed.access_token).context("the answer holds no token")?;
    let mut value = HeaderValue::from_str(&format!("Bearer {value}"))
        .context("the token has characters a header cannot hold")?;
    value.set_sensitive(true);
    let lifetime = parsed.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    let expires = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
    Ok(Token { value, expires })
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => Some(dirs::home_dir()?.join(".docker").join("config.json")),
    }
}

/// The parts of Docker's config file that hold credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, DockerAuth>,
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    pub creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    identitytoken: Option<Secret>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl DockerConfig {
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).context("invalid Docker config (expected JSON)")
    }

    /// The credential helper that holds `host`'s credentials, if any: its own, else the
    /// default store.
    pub fn helper_for(&self, host: &str) -> Option<&str> {
        let own = self.cred_helpers.iter().find(|(key, _)| docker_key_matches(key, host));
        own.map(|(_, helper)| helper.as_str()).or(self.creds_store.as_deref())
    }

    /// The credentials stored inline under `auths` for `host`.
    pub fn inline(&self, host: &str, source: &str) -> Result<Option<Credentials>> {
        let Some((_, entry)) = self.auths.iter().find(|(key, _)| docker_key_matches(key, host))
        else {
            return Ok(None);
        };
        if let Some(token) = entry.identitytoken.clone().filter(|t| !t.expose().is_empty()) {
            return Ok(Some(Credentials {
                credential: Credential::Identity(token),
                source: source.into(),
            }));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials::basic(username, password.clone(), source)));
        }
        let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let (username, password) = decode_basic(encoded)
            .with_context(|| format!("invalid `auths.\"{host}\".auth` in {source}"))?;
        Ok(Some(Credentials::basic(&username, password, source)))
    }
}

/// Decodes base64 `user:password`, as Docker and wasm-pkg store it.
pub fn decode_basic(encoded: &str) -> Result<(String, Secret)> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(encoded.trim()).context("it is not base64")?;
    let text = String::from_utf8(bytes).context("it is not UTF-8")?;
    let (username, password) =
        text.split_once(':').context("expected `user:password` once decoded")?;
    Ok((username.to_string(), Secret::new(password)))
}

/// Base64 `user:password`, the form of `auths."host".auth`.
pub fn encode_basic(username: &str, password: &Secret) -> String {
    STANDARD.encode(format!("{username}:{}", password.expose()))
}

/// The key Docker files `host`'s credentials under. Docker Hub keeps its historical URL.
pub fn docker_key(host: &str) -> String {
    if is_docker_hub(host) { "https://index.docker.io/v1/".to_string() } else { host.to_string() }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(host, "docker.io" | "index.docker.io" | "registry-1.docker.io")
}

/// Docker keys are host names, sometimes written as URLs (`https://host/v1/`).
fn docker_key_matches(key: &str, host: &str) -> bool {
    let bare = key.split_once("://").map_or(key, |(_, rest)| rest);
    let bare = bare.split('/').next().unwrap_or(bare);
    bare.eq_ignore_ascii_case(host) || is_docker_hub(bare) && is_docker_hub(host)
}

/// Looks `host` up in Docker's config and credential helpers. Problems are warnings: a
/// broken login must not stop anonymous access to public content.
async fn docker_credentials(host: &str) -> Option<Credentials> {
    match lookup_docker(host).await {
        Ok(found) => found,
        Err(err) => {
            crate::shell::warn(format_args!("ignoring Docker credentials for `{host}`: {err:#}"));
            None
        }
    }
}

async fn lookup_docker(host: &str) -> Result<Option<Credentials>> {
    let Some(path) = docker_config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    let source = format!("the Docker config `{}`", path.display());
    let config = DockerConfig::parse(&text).with_context(|| format!("in `{}`", path.display()))?;
    let own_helper = config.cred_helpers.keys().any(|key| docker_key_matches(key, host));
    if !own_helper && let Some(found) = config.inline(host, &source)? {
        return Ok(Some(found));
    }
    match config.helper_for(host) {
        Some(helper) => helper_get(helper, host).await,
        None => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: Secret,
}

/// Runs `docker-credential-<helper> get` with the server on stdin.
async fn helper_get(helper: &str, host: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let output = run_helper(&program, "get", docker_key(host).as_bytes()).await?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if format!("{stdout}{stderr}").to_lowercase().contains("not found") {
            return Ok(None);
        }
        bail!("`{program} get` failed ({}): {}", output.status, stderr.trim());
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{program} get` did not answer with credentials"))?;
    let source = format!("the credential helper `{program}`");
    if answer.username == "<token>" {
        return Ok(Some(Credentials { credential: Credential::Identity(answer.secret), source }));
    }
    Ok(Some(Credentials::basic(&answer.username, answer.secret, source)))
}

/// Runs a credential helper action with `input` on stdin and a time limit.
pub async fn run_helper(program: &str, action: &str, input: &[u8]) -> Result<std::process::Output> {
    let mut child = tokio::process::Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to run the Docker credential helper `{program}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).await.with_context(|| format!("failed to write to `{program}`"))?;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("`{program} {action}` did not finish within {HELPER_TIMEOUT:?}"))?;
    output.with_context(|| format!("failed to run `{program} {action}`"))
}

/// Stores `username` and `password` for `host` where Docker tools read them: with the host's
/// credential helper or the default store when the Docker config names one, else inline
/// under `auths` (other keys are kept; the file is replaced atomically). Returns where.
pub async fn save_docker_credentials(
    host: &str,
    username: &str,
    password: &Secret,
) -> Result<String> {
    let path =
        docker_config_path().context("cannot tell where Docker's config is (no home directory)")?;
    let mut document = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text).with_context(|| {
            format!("invalid Docker config `{}` (expected JSON)", path.display())
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    let config: DockerConfig = serde_json::from_value(document.clone())
        .with_context(|| format!("invalid Docker config `{}`", path.display()))?;
    if let Some(helper) = config.helper_for(host) {
        return helper_store(helper, host, username, password).await;
    }
    let root = document.as_object_mut().with_context(|| {
        format!("invalid Docker config `{}`: not a JSON object", path.display())
    })?;
    let auths = root.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths.as_object_mut().with_context(|| {
        format!("invalid Docker config `{}`: `auths` is not an object", path.display())
    })?;
    auths.insert(docker_key(host), serde_json::json!({ "auth": encode_basic(username, password) }));
    let text =
        serde_json::to_vec_pretty(&document).context("failed to encode the Docker config")?;
    crate::fsutil::write_secret(&path, &text)?;
    Ok(format!("`{}`", path.display()))
}

async fn helper_store(
    helper: &str,
    host: &str,
    username: &str,
    password: &Secret,
) -> Result<String> {
    let program = format!("docker-credential-{helper}");
    let input = serde_json::json!({
        "ServerURL": docker_key(host),
        "Username": username,
        "Secret": password.expose(),
    });
    let output = run_helper(&program, "store", input.to_string().as_bytes()).await?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("`{program} store` failed ({}): {}", output.status, stderr.trim());
    }
    Ok(format!("the credential helper `{program}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = Challenge::parse(concat!(
            r#"Bearer realm="https://ghcr.io/token","#,
            r#"service="ghcr.io",scope="repository:a/b:pull,push""#
        ))
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://ghcr.io/token"));
        assert_eq!(c.param("service"), Some("ghcr.io"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let basic = Challenge::parse(r#"Basic realm="wreg \"test\"""#).unwrap();
        assert_eq!((basic.scheme.as_str(), basic.param("realm")), ("basic", Some("wreg \"test\"")));
        assert_eq!(Challenge::parse("Bearer realm=\"unterminated"), None);
    }

    #[test]
    fn scopes_name_repositories_and_actions() {
        let mut scope = Scope::push("acme/text");
        scope.mount_from = Some("acme/other".into());
        assert_eq!(scope.key(), "repository:acme/text:pull,push repository:acme/other:pull");
        assert_eq!(Scope::pull("a/b").scopes(), ["repository:a/b:pull"]);
        assert_eq!(Scope::default().key(), "");
    }

    #[test]
    fn docker_config_entries_are_found_by_host() {
        let config = DockerConfig::parse(
            r#"{"auths": {"https://registry.lan:5000/v1/": {"auth": "dTpwYXNz"},
                          "https://index.docker.io/v1/": {"username": "me", "password": "pw"},
                          "ghcr.io": {"identitytoken": "refresh"},
                          "empty.io": {}},
                "credHelpers": {"gcr.io": "gcloud"}, "credsStore": "desktop", "other": 1}"#,
        )
        .unwrap();
        let found = config.inline("registry.lan:5000", "test").unwrap().unwrap();
        let expected = Credential::Basic { username: "u".into(), password: Secret::new("pass") };
        assert_eq!(found.credential, expected);
        let hub = config.inline("registry-1.docker.io", "test").unwrap().unwrap();
        assert!(
            matches!(hub.credential, Credential::Basic { ref username, .. } if username == "me")
        );
        let ghcr = config.inline("ghcr.io", "test").unwrap().unwrap();
        assert_eq!(ghcr.credential, Credential::Identity(Secret::new("refresh")));
        assert_eq!(config.inline("empty.io", "test").unwrap(), None);
        assert_eq!(config.helper_for("gcr.io"), Some("gcloud"));
        assert_eq!(config.helper_for("quay.io"), Some("desktop"));
    }

    #[test]
    fn secrets_stay_hidden() {
        let credentials = Credentials::basic("me", Secret::new("hunter2"), "`X`");
        let shown = format!("{credentials:?} {}", credentials.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("`me` from `X`"), "{shown}");
        let (user, password) = decode_basic(&encode_basic("me", &Secret::new("a:b"))).unwrap();
        assert_eq!((user.as_str(), password.expose()), ("me", "a:b"));
        assert!(decode_basic("bm9jb2xvbg").is_err(), "no colon once decoded");
    }

    #[test]
    fn tokens_default_to_sixty_seconds() {
        let token = parse_token(br#"{"access_token": "abc"}"#).unwrap();
        assert_eq!(token.value.to_str().unwrap(), "Bearer abc");
        let left = token.expires - Instant::now();
        assert!(left <= DEFAULT_TOKEN_LIFETIME - EXPIRY_MARGIN);
        assert!(parse_token(b"<html>").is_err());
    }
}
