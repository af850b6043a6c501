//! What the store keeps about who may call siemgate: app registrations with
//! their secrets and roles, tenant users, and the keys that sign tokens.
//!
//! The store holds hashes and key material as opaque bytes; making and
//! checking them is the `identity` crate's work.

use siemgate_model::Timestamp;
use uuid::Uuid;

/// Bytes that must never be printed: a secret's hash, a password hash, a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// An app registration: a client id, its secrets and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub client_id: Uuid,
    pub tenant: Uuid,
    pub name: String,
    pub roles: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub secrets: Vec<AppSecret>,
    pub created: Timestamp,
}

/// One of an app's secrets, as stored: its hash, never its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSecret {
    /// Names the secret for removal, as Azure AD's `keyId` does.
    pub id: Uuid,
    pub hash: Sealed,
    /// The secret's first characters, so an operator can tell secrets apart.
    pub hint: String,
    pub created: Timestamp,
    pub expires: Timestamp,
}

/// What `create_app` needs.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub client_id: Uuid,
    pub tenant: Uuid,
    pub name: String,
    pub roles: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub secret: AppSecret,
}

/// A person of a tenant who signs in on the authorization page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's object id (`oid` in tokens).
    pub id: Uuid,
    pub tenant: Uuid,
    /// The sign-in name, such as `alice@contoso.onmicrosoft.com`.
    pub username: String,
    pub display_name: String,
    /// An argon2id PHC string.
    pub password_hash: Sealed,
    pub created: Timestamp,
}

/// A token-signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// The private key, PKCS#8 DER.
    pub pkcs8: Sealed,
    pub created: Timestamp,
    /// When a newer key took over signing; `None` for the key that signs now.
    /// A retired key stays published until the last token it signed expires.
    pub retired: Option<Timestamp>,
}

/// What an authorization code stands for until it is redeemed: one user's
/// sign-in, for one app, one redirect URI and, with PKCE, one verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// SHA-256 of the code; the code itself went to the browser only.
    pub hash: Sealed,
    pub client_id: Uuid,
    /// The signed-in user's id.
    pub user: Uuid,
    pub redirect_uri: String,
    /// The scopes asked for, space-separated, as the client sent them.
    pub scope: String,
    /// The audience the code's tokens are for.
    pub resource: String,
    /// Repeated in the id token, so the client can tie it to its request.
    pub nonce: Option<String>,
    /// The PKCE challenge and its method (`S256` or `plain`).
    pub code_challenge: Option<String>,
    pub challenge_method: Option<String>,
    pub issued: Timestamp,
    pub expires: Timestamp,
}

/// The outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First presentation: the code is now spent.
    Fresh(Box<AuthCode>),
    /// The code was redeemed before. The store has revoked the refresh
    /// tokens the app holds for the user, as a replayed code may be stolen.
    Reused,
    /// No such code (or one expired long ago and forgotten).
    Unknown,
}

/// A refresh token as stored: its hash and what it may be exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub hash: Sealed,
    pub client_id: Uuid,
    pub user: Uuid,
    pub scope: String,
    pub resource: String,
    pub issued: Timestamp,
    pub expires: Timestamp,
}
