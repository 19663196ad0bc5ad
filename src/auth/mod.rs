//! Accounts and access control: passwords, access and refresh tokens, API
//! keys, who a caller is ([`Principal`]), rate limits and login throttling.
//! The HTTP extractors that use this live in `api::extract`.

pub mod accounts;
pub mod api_keys;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod refresh;
pub mod secret;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use principal::{Credential, Principal};
pub use secret::JwtSecret;
pub use vigil_wire::auth::TokenPair;

use self::api_keys::{ApiKeyError, ApiKeys, KeyScope};
use self::password::{Argon2Settings, HashError, PasswordHasher};
use self::rate_limit::{retry_after_secs, RateLimit, RequestLimiter};
use self::refresh::{RefreshError, RefreshTokens};
use self::throttle::{LoginThrottle, ThrottleSettings};
use self::tokens::{JwtAlgorithm, TokenError, TokenIssuer};
use crate::db::{Database, DbError, Transient};
use crate::error::{Coded, ErrorCode};
use crate::users::fields::{Email, FieldError, Password, Quota, UserName};
use crate::users::{AccountDirectory, Role, User, UserError, UserId, Users};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again later")]
    LoginThrottled(Duration),
    #[error("missing credentials: send `Authorization: Bearer <token>` or `X-API-Key: <key>`")]
    Unauthenticated,
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("this needs the admin role")]
    Forbidden,
    #[error("{}", scope_refusal(*.0))]
    ScopeForbidden(KeyScope),
    #[error("rate limit exceeded; slow down")]
    RateLimited(Duration),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            AuthError::Field(e) => e.code(),
            AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AuthError::LoginThrottled(_) => ErrorCode::LoginThrottled,
            AuthError::Unauthenticated => ErrorCode::Unauthenticated,
            AuthError::InvalidToken(_) => ErrorCode::InvalidToken,
            AuthError::Forbidden => ErrorCode::Forbidden,
            AuthError::ScopeForbidden(_) => ErrorCode::ScopeForbidden,
            AuthError::RateLimited(_) => ErrorCode::RateLimited,
            AuthError::User(e) => e.code(),
            AuthError::ApiKey(e) => e.code(),
            AuthError::Refresh(e) => e.code(),
            AuthError::Hash(e) => e.code(),
            AuthError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            AuthError::LoginThrottled(wait) | AuthError::RateLimited(wait) => Some(retry_after_secs(*wait)),
            AuthError::User(e) => e.retry_after(),
            AuthError::ApiKey(e) => e.retry_after(),
            AuthError::Refresh(e) => e.retry_after(),
            AuthError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Closing an account runs in a transaction: these are the failures after
/// which it may simply run again.
impl Transient for AuthError {
    fn is_transient(&self) -> bool {
        match self {
            AuthError::Db(e)
            | AuthError::ApiKey(ApiKeyError::Db(e))
            | AuthError::Refresh(RefreshError::Db(e)) => e.is_transient(),
            AuthError::User(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Why a key of `scope` was refused: what it is for.
fn scope_refusal(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Telemetry => "this API key may only send telemetry (POST /telemetry/…)",
        KeyScope::AlarmsWrite => {
            "this API key may only send alarms (POST /api/v1/alarms, or `alarm` on the WebSocket)"
        }
        KeyScope::Full => "this API key may not do this",
    }
}

/// Accounts, tokens and limits, as `vigil serve` is configured.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The quota of a new account, until an admin changes it.
    pub default_quota: Quota,
    pub rate_limit: RateLimit,
    pub jwt_algorithm: JwtAlgorithm,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub argon2: Argon2Settings,
    pub login_throttle: ThrottleSettings,
}

/// Everything account-related that handlers need, built once at startup.
#[derive(Clone)]
pub struct AuthService {
    pub users: Users,
    /// Who exists with which role, as of now: followed by a
    /// [`crate::users::DirectorySync`] that startup runs.
    pub accounts: AccountDirectory,
    pub api_keys: ApiKeys,
    pub tokens: TokenIssuer,
    pub limiter: RequestLimiter,
    refresh: RefreshTokens,
    passwords: PasswordHasher,
    throttle: Arc<LoginThrottle>,
    default_quota: Quota,
}

impl AuthService {
    pub fn new(db: &Database, settings: &AuthSettings, secret: &JwtSecret) -> Result<Self, HashError> {
        Ok(Self {
            users: Users::new(db),
            accounts: AccountDirectory::default(),
            api_keys: ApiKeys::new(db),
            tokens: TokenIssuer::new(
                secret.as_bytes(),
                settings.jwt_algorithm,
                settings.access_token_ttl,
            ),
            limiter: RequestLimiter::new(settings.rate_limit),
            refresh: RefreshTokens::new(db, settings.refresh_token_ttl),
            passwords: PasswordHasher::new(settings.argon2)?,
            throttle: Arc::new(LoginThrottle::new(settings.login_throttle)),
            default_quota: settings.default_quota,
        })
    }

    pub async fn register(
        &self,
        name: &UserName,
        email: &Email,
        password: Password,
    ) -> Result<User, AuthError> {
        let passwords = self.passwords.clone();
        let hash = tokio::task::spawn_blocking(move || passwords.hash(&password))
            .await
            .map_err(|e| HashError::from_join(&e))??;
        Ok(self.users.create(name, email, hash, self.default_quota).await?)
    }

    /// Same answer and the same work for an unknown login and a wrong password.
    pub async fn login(&self, login: &str, password: String, ip: IpAddr) -> Result<TokenPair, AuthError> {
        self.throttle
            .check(login, ip)
            .map_err(AuthError::LoginThrottled)?;
        let user = self.users.find_by_login(login).await?;
        let passwords = self.passwords.clone();
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let valid = tokio::task::spawn_blocking(move || passwords.verify(&password, stored.as_deref()))
            .await
            .map_err(|e| HashError::from_join(&e))?;
        match user {
            Some(user) if valid => {
                self.throttle.record_success(login);
                self.issue_pair(&user, self.refresh.start_family(user.id).await?)
            }
            _ => {
                self.throttle.record_failure(login, ip);
                tracing::info!(%ip, "failed login");
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let (user_id, next) = self.refresh.rotate(refresh_token).await?;
        let user = self
            .users
            .find(user_id)
            .await?
            .ok_or(AuthError::InvalidToken("the account no longer exists"))?;
        self.issue_pair(&user, next)
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        Ok(self.refresh.revoke(refresh_token).await?)
    }

    /// Resolves the credentials of a request to a principal with full
    /// scope: an access token when there is one, else an API key. Keys
    /// restricted to one thing (telemetry, alarms) are refused here, so that
    /// every route but theirs (which use [`Self::authenticate_for`]) refuses
    /// them.
    pub async fn authenticate(
        &self,
        bearer_token: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<Principal, AuthError> {
        self.authenticate_for(bearer_token, api_key, KeyScope::Full).await
    }

    /// Like [`Self::authenticate`], also accepting keys restricted to `scope`.
    pub async fn authenticate_for(
        &self,
        bearer_token: Option<&str>,
        api_key: Option<&str>,
        scope: KeyScope,
    ) -> Result<Principal, AuthError> {
        let principal = self.any_credential(bearer_token, api_key).await?;
        let own = principal.scope();
        if own == KeyScope::Full || own == scope {
            Ok(principal)
        } else {
            Err(AuthError::ScopeForbidden(own))
        }
    }

    /// The principal of whichever credential there is, whatever its scope.
    async fn any_credential(
        &self,
        bearer_token: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if let Some(token) = bearer_token {
            let claims = self.tokens.verify(token).map_err(|e| match e {
                TokenError::Expired => AuthError::InvalidToken("access token expired; refresh it"),
                TokenError::Invalid => AuthError::InvalidToken("access token invalid"),
            })?;
            let user_id =
                UserId::parse(&claims.sub).ok_or(AuthError::InvalidToken("access token invalid"))?;
            // The role now, not the one the token was issued with: a
            // demotion takes effect before the token expires.
            let role = self
                .current_role(user_id)
                .await?
                .ok_or(AuthError::InvalidToken("the account no longer exists"))?;
            return Ok(Principal {
                user_id,
                role,
                credential: Credential::AccessToken,
            });
        }
        if let Some(key) = api_key {
            let invalid = || AuthError::InvalidToken("API key invalid or revoked");
            let stored = self.api_keys.authenticate(key).await?.ok_or_else(invalid)?;
            let role = self.current_role(stored.user_id).await?.ok_or_else(invalid)?;
            return Ok(Principal {
                user_id: stored.user_id,
                role,
                credential: Credential::ApiKey(stored.id, stored.scope),
            });
        }
        Err(AuthError::Unauthenticated)
    }

    /// The account's role, `None` once it is deleted.
    async fn current_role(&self, id: UserId) -> Result<Option<Role>, AuthError> {
        Ok(self.accounts.role(id, &self.users).await?)
    }

    /// One token that may be either credential (the WebSocket's `?token=`
    /// and `auth` message): an access token is tried first, then an API key.
    /// Keys restricted to `alarms:write` are accepted too: the session
    /// checks what such a principal may do ([`Principal::scope`]).
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let scope = KeyScope::AlarmsWrite;
        match self.authenticate_for(Some(token), None, scope).await {
            Err(AuthError::InvalidToken(jwt_reason)) => {
                match self.authenticate_for(None, Some(token), scope).await {
                    // A JWT-shaped token is better explained by the JWT's own reason (e.g. expired).
                    Err(AuthError::InvalidToken(_)) if token.matches('.').count() == 2 => {
                        Err(AuthError::InvalidToken(jwt_reason))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    fn issue_pair(&self, user: &User, refresh_token: String) -> Result<TokenPair, AuthError> {
        Ok(TokenPair {
            access_token: self.tokens.issue(user.id, user.role),
            refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.tokens.ttl_secs(),
        })
    }
}
