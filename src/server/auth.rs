//! Access control for the embedded registry: long-lived tokens with per-namespace scopes,
//! kept hashed in an auth file, and the short-lived session tokens of the Bearer token flow
//! that docker-style clients (skopeo, docker, oras) follow.
//!
//! A token is 256 random bits, so a plain sha256 of it is as hard to reverse as the token is
//! to guess: the file needs no salt or slow hash, and lookups stay cheap.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::fsutil::write_atomic;
use crate::oci::names::{is_component, is_repository, namespace};

/// How long a session token from the token endpoint stays valid.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(300);

/// Sessions kept at most; anonymous token requests could otherwise fill memory.
const MAX_SESSIONS: usize = 100_000;

/// How often the auth file is checked for changes, so added or removed tokens take effect
/// without a restart.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

const TOKEN_PREFIX: &str = "wreg_";

/// What a request does to a repository. Push implies pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
}

/// A permission a token carries: `pull:<namespace>` or `push:<namespace>`, `*` for every
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope {
    action: Action,
    /// `None` stands for every namespace.
    namespace: Option<String>,
}

impl Scope {
    fn permits(&self, repository: &str, action: Action) -> bool {
        let namespace_ok = self.namespace.as_deref().is_none_or(|ns| ns == namespace(repository));
        namespace_ok && (action == Action::Pull || self.action == Action::Push)
    }
}

impl FromStr for Scope {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let Some((action, namespace)) = s.split_once(':') else {
            bail!("invalid scope `{s}`: expected `pull:<namespace>` or `push:<namespace>`");
        };
        let action = match action {
            "pull" => Action::Pull,
            "push" => Action::Push,
            _ => bail!("invalid scope `{s}`: the action must be `pull` or `push`"),
        };
        let namespace = match namespace {
            "*" => None,
            ns if is_component(ns) => Some(ns.to_string()),
            _ => bail!("invalid scope `{s}`: `{namespace}` is not a namespace name or `*`"),
        };
        Ok(Self { action, namespace })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Pull => "pull",
            Action::Push => "push",
        };
        write!(f, "{action}:{}", self.namespace.as_deref().unwrap_or("*"))
    }
}

impl TryFrom<String> for Scope {
    type Error = anyhow::Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> Self {
        scope.to_string()
    }
}

/// The auth file: TOML with one `[[token]]` table per token.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenEntry>,
}

/// A token as the auth file keeps it: never the secret, only its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    pub id: String,
    /// Hex sha256 of the secret.
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A token just created: the secret exists only here and in the caller's hands.
pub struct NewToken {
    pub id: String,
    pub secret: String,
}

/// Creates a token with `scopes` in the auth file at `path` (creating the file).
// TODO: lock the auth file; two `token add` at the same moment may keep only one token.
pub fn add_token(path: &Path, scopes: Vec<Scope>, label: Option<String>) -> Result<NewToken> {
    if scopes.is_empty() {
        bail!("a token needs at least one scope");
    }
    let mut file = read_file(path, true)?;
    let secret = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
    let sha256 = hex(&Sha256::digest(secret.as_bytes()));
    let id = sha256[..12].to_string();
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    file.tokens.push(TokenEntry { id: id.clone(), sha256, scopes, created, label });
    write_file(path, &file)?;
    Ok(NewToken { id, secret })
}

/// The tokens in the auth file at `path`.
pub fn list_tokens(path: &Path) -> Result<Vec<TokenEntry>> {
    Ok(read_file(path, false)?.tokens)
}

/// Removes the token with `id` from the auth file; false when there is none.
pub fn remove_token(path: &Path, id: &str) -> Result<bool> {
    let mut file = read_file(path, false)?;
    let before = file.tokens.len();
    file.tokens.retain(|token| token.id != id);
    if file.tokens.len() == before {
        return Ok(false);
    }
    write_file(path, &file)?;
    Ok(true)
}

fn read_file(path: &Path, missing_ok: bool) -> Result<TokenFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if missing_ok && err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(TokenFile::default());
        }
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    toml_edit::de::from_str(&text)
        .with_context(|| format!("failed to parse the auth file `{}`", path.display()))
}

fn write_file(path: &Path, file: &TokenFile) -> Result<()> {
    let body = toml_edit::ser::to_string_pretty(file).context("failed to encode the auth file")?;
    let text = format!(
        "# cargo-wreg registry tokens. Each is stored as the sha256 of its secret; delete a\n\
         # `[[token]]` table to revoke it.\n\n{body}"
    );
    // The temporary file behind `write_atomic` is created with mode 0600; make sure of it.
    write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("failed to restrict the mode of `{}`", path.display()))?;
    }
    Ok(())
}

/// Who a request comes from, and so what it may do.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The server runs without an auth file: everything is allowed.
    Open,
    Anonymous {
        public_read: bool,
    },
    Token(Arc<[Scope]>),
    Session(Arc<Session>),
}

impl Identity {
    /// Whether this identity may do `action` on `repository`.
    pub fn may(&self, repository: &str, action: Action) -> bool {
        match self {
            Self::Open => true,
            Self::Anonymous { public_read } => *public_read && action == Action::Pull,
            Self::Token(scopes) => scopes.iter().any(|scope| scope.permits(repository, action)),
            Self::Session(session) => session.grants.iter().any(|grant| {
                grant.repository == repository && (action == Action::Pull || grant.push)
            }),
        }
    }

    /// Whether any credentials were presented.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous { .. })
    }

    /// Whether the catalog should list `repository` to this identity: sessions see what the
    /// token behind them may pull.
    pub fn may_list(&self, repository: &str) -> bool {
        match self {
            Self::Session(session) => session.owner.may(repository, Action::Pull),
            other => other.may(repository, Action::Pull),
        }
    }
}

/// A short-lived token from the token endpoint, and what it grants.
#[derive(Debug)]
pub struct Session {
    grants: Vec<Grant>,
    /// Who asked for it: tells a scope it lacks from one its owner can never have.
    owner: Identity,
    expires: Instant,
}

#[derive(Debug)]
struct Grant {
    repository: String,
    push: bool,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    /// No credentials, or invalid ones: 401 with a challenge.
    Unauthenticated,
    /// A session token lacking a scope its owner could get: 401 asking for a new token.
    InsufficientScope,
    /// Valid credentials without the permission: 403.
    Denied,
}

/// Why the token endpoint issued no session token.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No valid credentials, or none where `--public-read` is off.
    Unauthenticated,
    /// Too many live sessions, or no randomness to make one from: try again later.
    Busy,
}

/// A token issued by the token endpoint.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
}

/// The access rules of a server started with `--auth-file`.
pub struct Auth {
    file: PathBuf,
    public_read: bool,
    tokens: RwLock<Loaded>,
    sessions: Mutex<HashMap<[u8; 32], Arc<Session>>>,
}

/// The auth file as last read.
struct Loaded {
    entries: Arc<[Entry]>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

struct Entry {
    hash: [u8; 32],
    scopes: Arc<[Scope]>,
}

impl Auth {
    /// Loads the auth file at `file`, which must exist.
    pub fn load(file: PathBuf, public_read: bool) -> Result<Self> {
        let stamp = file_stamp(&file);
        let entries = load_entries(&file)?;
        warn_if_readable(&file);
        let loaded = Loaded { entries, stamp, checked: Instant::now() };
        Ok(Self { file, public_read, tokens: RwLock::new(loaded), sessions: Mutex::default() })
    }

    /// The identity behind a request's `Authorization` header. Invalid credentials are
    /// refused rather than treated as anonymous, so that a client learns its token is wrong.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Identity, Denial> {
        let Some(authorization) = authorization else {
            return Ok(Identity::Anonymous { public_read: self.public_read });
        };
        let (scheme, credentials) = authorization.trim().split_once(' ').unwrap_or(("", ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(session) = self.session(credentials) {
                return Ok(Identity::Session(session));
            }
            return self.token(credentials).ok_or(Denial::Unauthenticated);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            // Docker-style clients send `user:<token>`; the user name carries no meaning.
            let decoded = base64::engine::general_purpose::STANDARD.decode(credentials);
            let decoded = decoded.ok().and_then(|bytes| String::from_utf8(bytes).ok());
            let password = decoded.as_deref().and_then(|text| text.split_once(':')).map(|p| p.1);
            return password.and_then(|secret| self.token(secret)).ok_or(Denial::Unauthenticated);
        }
        Err(Denial::Unauthenticated)
    }

    /// Checks that `identity` may do `action` on `repository`.
    pub fn authorize(identity: &Identity, repository: &str, action: Action) -> Result<(), Denial> {
        if identity.may(repository, action) {
            return Ok(());
        }
        match identity {
            Identity::Session(session) if session.owner.may(repository, action) => {
                Err(Denial::InsufficientScope)
            }
            Identity::Session(session) if session.owner.is_anonymous() => {
                Err(Denial::Unauthenticated)
            }
            Identity::Anonymous { .. } => Err(Denial::Unauthenticated),
            _ => Err(Denial::Denied),
        }
    }

    /// Issues a session token for the requested `scopes` (`repository:<name>:<actions>`),
    /// granting each action the identity may do and leaving out the rest, as the docker
    /// token protocol has it.
    pub fn issue(&self, identity: Identity, scopes: &[&str]) -> Result<Issued, Refusal> {
        // Sessions come from long-lived tokens only, or from nobody where reads are public.
        let anonymous_refused = identity.is_anonymous() && !self.public_read;
        if anonymous_refused || matches!(identity, Identity::Session(_)) {
            return Err(Refusal::Unauthenticated);
        }
        let grants = scopes
            .iter()
            .filter_map(|scope| requested_grant(scope))
            .filter_map(|(repository, push)| {
                let push = push && identity.may(&repository, Action::Push);
                identity.may(&repository, Action::Pull).then_some(Grant { repository, push })
            })
            .collect();
        let token = random_hex(32).map_err(|err| {
            tracing::warn!("refused a session token: {err:#}");
            Refusal::Busy
        })?;
        let session =
            Session { grants, owner: identity, expires: Instant::now() + SESSION_LIFETIME };
        self.store_session(hash_of(&token), session)?;
        Ok(Issued { token, expires_in: SESSION_LIFETIME.as_secs() })
    }

    /// Forgets expired session tokens.
    pub fn purge_sessions(&self) {
        let now = Instant::now();
        self.sessions().retain(|_, session| session.expires > now);
    }

    fn store_session(&self, hash: [u8; 32], session: Session) -> Result<(), Refusal> {
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS {
            let now = Instant::now();
            sessions.retain(|_, session| session.expires > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            tracing::warn!("refused a session token: {MAX_SESSIONS} are active");
            return Err(Refusal::Busy);
        }
        sessions.insert(hash, Arc::new(session));
        Ok(())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Session>>> {
        // The map holds no invariant a panicking holder could have broken.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live session a token names. Keyed by the token's hash, the lookup reveals
    /// nothing useful about the token through its timing.
    fn session(&self, token: &str) -> Option<Arc<Session>> {
        let session = self.sessions().get(&hash_of(token)).cloned()?;
        (session.expires > Instant::now()).then_some(session)
    }

    /// The long-lived token matching `secret`, compared in constant time against every entry.
    fn token(&self, secret: &str) -> Option<Identity> {
        let hash = hash_of(secret);
        let entries = self.entries();
        let mut found = None;
        for entry in entries.iter() {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(Identity::Token(entry.scopes.clone()));
            }
        }
        found
    }

    /// The tokens of the auth file, read again when it changed.
    fn entries(&self) -> Arc<[Entry]> {
        {
            let loaded = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
            if loaded.checked.elapsed() < RELOAD_INTERVAL {
                return loaded.entries.clone();
            }
        }
        let mut loaded = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        if loaded.checked.elapsed() >= RELOAD_INTERVAL {
            loaded.checked = Instant::now();
            let stamp = file_stamp(&self.file);
            if stamp != loaded.stamp {
                match load_entries(&self.file) {
                    Ok(entries) => *loaded = Loaded { entries, stamp, checked: loaded.checked },
                    Err(err) => tracing::warn!("keeping the previous tokens: {err:#}"),
                }
            }
        }
        loaded.entries.clone()
    }
}

/// Parses `repository:<name>:<actions>` into the repository and whether push was asked.
fn requested_grant(scope: &str) -> Option<(String, bool)> {
    let (kind, rest) = scope.split_once(':')?;
    let (repository, actions) = rest.rsplit_once(':')?;
    if kind != "repository" || !is_repository(repository) {
        return None;
    }
    let push = actions.split(',').any(|action| matches!(action, "push" | "*"));
    Some((repository.to_string(), push))
}

fn load_entries(path: &Path) -> Result<Arc<[Entry]>> {
    let file = read_file(path, false)?;
    let mut entries = Vec::new();
    for token in file.tokens {
        let hash = parse_hash(&token.sha256).with_context(|| {
            format!("token `{}` in `{}` has an invalid sha256", token.id, path.display())
        })?;
        entries.push(Entry { hash, scopes: token.scopes.into() });
    }
    Ok(entries.into())
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(unix)]
fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        crate::shell::warn(format_args!(
            "the auth file `{}` is readable by other users; `chmod 600` it",
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_readable(_path: &Path) {}

fn hash_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let mut hash = [0; 32];
    if text.len() != 64 {
        bail!("expected 64 hex digits");
    }
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).context("expected hex digits")?;
        *byte = u8::from_str_radix(pair, 16).context("expected hex digits")?;
    }
    Ok(hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len` bytes from the operating system's secure random source, as hex.
pub fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0; len];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("failed to get random bytes from the operating system"))?;
    Ok(hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(scopes: &[&str], public_read: bool) -> (tempfile::TempDir, Auth, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.toml");
        let scopes = scopes.iter().map(|s| s.parse().unwrap()).collect();
        let token = add_token(&file, scopes, None).unwrap();
        let auth = Auth::load(file, public_read).unwrap();
        (dir, auth, token.secret)
    }

    fn basic(secret: &str) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("ci:{secret}"));
        format!("Basic {encoded}")
    }

    #[test]
    fn parses_and_prints_scopes() {
        for text in ["pull:acme", "push:acme", "push:*", "pull:a-b.c"] {
            assert_eq!(text.parse::<Scope>().unwrap().to_string(), text);
        }
        for bad in ["acme", "read:acme", "push:", "push:ACME", "push:a/b", "push:.."] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn push_implies_pull_within_the_namespace() {
        let scopes: Arc<[Scope]> = vec!["push:acme".parse().unwrap()].into();
        let identity = Identity::Token(scopes);
        assert!(identity.may("acme/x", Action::Push));
        assert!(identity.may("acme/x/y", Action::Pull));
        assert!(!identity.may("other/x", Action::Pull));
        assert!(!identity.may("acmex/y", Action::Pull));
        let everything = Identity::Token(vec!["pull:*".parse().unwrap()].into());
        assert!(everything.may("any/x", Action::Pull));
        assert!(!everything.may("any/x", Action::Push));
    }

    #[test]
    fn token_file_keeps_only_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.toml");
        let token = add_token(&file, vec!["push:acme".parse().unwrap()], Some("ci".into()));
        let token = token.unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&token.secret));
        assert!(text.contains(&hex(&hash_of(&token.secret))));
        let listed = list_tokens(&file).unwrap();
        assert_eq!((listed[0].id.as_str(), listed[0].label.as_deref()), (&*token.id, Some("ci")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove_token(&file, &token.id).unwrap());
        assert!(!remove_token(&file, &token.id).unwrap());
        assert!(list_tokens(&file).unwrap().is_empty());
    }

    #[test]
    fn authenticates_bearer_and_basic_tokens() {
        let (_dir, auth, secret) = auth(&["pull:acme"], false);
        for header in [format!("Bearer {secret}"), basic(&secret)] {
            let identity = auth.authenticate(Some(&header)).unwrap();
            assert!(identity.may("acme/x", Action::Pull), "{header}");
            assert_eq!(Auth::authorize(&identity, "acme/x", Action::Push), Err(Denial::Denied));
        }
        for bad in ["Bearer wreg_nope", "Basic !!!", "Digest x", "Bearer", &basic("wrong")] {
            assert_eq!(auth.authenticate(Some(bad)).unwrap_err(), Denial::Unauthenticated);
        }
        let anonymous = auth.authenticate(None).unwrap();
        assert_eq!(
            Auth::authorize(&anonymous, "acme/x", Action::Pull),
            Err(Denial::Unauthenticated)
        );
    }

    #[test]
    fn sessions_grant_what_was_asked_and_allowed() {
        let (_dir, auth, secret) = auth(&["push:acme", "pull:lib"], false);
        let owner = auth.authenticate(Some(&basic(&secret))).unwrap();
        let scopes = ["repository:acme/x:pull,push", "repository:lib/y:pull,push", "bogus"];
        let issued = auth.issue(owner, &scopes).unwrap();
        let session = auth.authenticate(Some(&format!("Bearer {}", issued.token))).unwrap();
        assert!(session.may("acme/x", Action::Push));
        assert!(session.may("lib/y", Action::Pull));
        assert_eq!(Auth::authorize(&session, "lib/y", Action::Push), Err(Denial::Denied));
        let other = Auth::authorize(&session, "acme/z", Action::Push);
        assert_eq!(other, Err(Denial::InsufficientScope));
    }

    #[test]
    fn anonymous_sessions_need_public_read() {
        let (_dir, closed, _) = auth(&["push:acme"], false);
        let anonymous = closed.authenticate(None).unwrap();
        let refused = closed.issue(anonymous, &["repository:acme/x:pull"]);
        assert_eq!(refused.err(), Some(Refusal::Unauthenticated));

        let (_dir, public, _) = auth(&["push:acme"], true);
        let anonymous = public.authenticate(None).unwrap();
        let issued = public.issue(anonymous, &["repository:acme/x:pull,push"]).unwrap();
        let session = public.authenticate(Some(&format!("Bearer {}", issued.token))).unwrap();
        assert!(session.may("acme/x", Action::Pull));
        let push = Auth::authorize(&session, "acme/x", Action::Push);
        assert_eq!(push, Err(Denial::Unauthenticated));
    }
}
