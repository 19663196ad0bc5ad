//! Accounts and access control: passwords, access and refresh tokens, API
//! keys, the authenticated-principal extractor, rate limits and login throttling.

pub mod api_keys;
pub mod password;
pub mod principal;
pub mod rate_limit;
pub mod refresh;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::api_keys::{ApiKeyError, ApiKeys};
use self::password::{HashError, PasswordHasher};
use self::rate_limit::{retry_after_secs, RequestLimiter};
use self::refresh::{RefreshError, RefreshTokens};
use self::throttle::LoginThrottle;
use self::tokens::TokenIssuer;
use crate::config::{AuthArgs, JwtSecret};
use crate::db::{Database, DbError};
use crate::error::{ApiError, ErrorCode};
use crate::users::fields::{Email, FieldError, Password, UserName};
use crate::users::{User, UserError, Users};

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

impl From<UserError> for ApiError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::NameTaken => ApiError::new(ErrorCode::UserNameTaken, err.to_string()),
            UserError::EmailTaken => ApiError::new(ErrorCode::EmailTaken, err.to_string()),
            UserError::NotFound => ApiError::new(ErrorCode::NotFound, "no such user"),
            UserError::QuotaExhausted { .. } => ApiError::new(ErrorCode::QuotaExhausted, err.to_string()),
            UserError::Db(db) => db.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::Field(_) => ApiError::new(ErrorCode::ValidationFailed, message),
            AuthError::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, message),
            AuthError::LoginThrottled(wait) => {
                ApiError::new(ErrorCode::LoginThrottled, message).with_retry_after(retry_after_secs(wait))
            }
            AuthError::Unauthenticated => ApiError::new(ErrorCode::Unauthenticated, message),
            AuthError::InvalidToken(_) => ApiError::new(ErrorCode::InvalidToken, message),
            AuthError::Forbidden => ApiError::new(ErrorCode::Forbidden, message),
            AuthError::RateLimited(wait) => {
                ApiError::new(ErrorCode::RateLimited, message).with_retry_after(retry_after_secs(wait))
            }
            AuthError::User(e) => e.into(),
            AuthError::ApiKey(ApiKeyError::TooMany) => ApiError::new(ErrorCode::ValidationFailed, message),
            AuthError::ApiKey(ApiKeyError::Db(e)) | AuthError::Db(e) => e.into(),
            AuthError::Refresh(RefreshError::Db(e)) => e.into(),
            AuthError::Refresh(e) => ApiError::new(ErrorCode::InvalidToken, e.to_string()),
            AuthError::Hash(e) => ApiError::internal(e),
        }
    }
}

/// Tokens handed out by login and refresh.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchange at `/api/v1/auth/refresh`. Single use.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
}

/// Everything account-related that handlers need, built once at startup.
#[derive(Clone)]
pub struct AuthService {
    pub users: Users,
    pub api_keys: ApiKeys,
    pub tokens: TokenIssuer,
    pub limiter: RequestLimiter,
    refresh: RefreshTokens,
    passwords: PasswordHasher,
    throttle: std::sync::Arc<LoginThrottle>,
    default_quota: u32,
}

impl AuthService {
    pub fn new(db: &Database, args: &AuthArgs, secret: &JwtSecret) -> Result<Self, HashError> {
        Ok(Self {
            users: Users::new(db),
            api_keys: ApiKeys::new(db),
            tokens: TokenIssuer::new(secret.as_bytes(), args.jwt_algorithm, args.access_token_ttl_secs),
            limiter: RequestLimiter::new(args.rate_limit_per_second, args.rate_limit_burst),
            refresh: RefreshTokens::new(db, args.refresh_token_ttl_secs),
            passwords: PasswordHasher::new(
                args.argon2_memory_kib,
                args.argon2_iterations,
                args.argon2_parallelism,
            )?,
            throttle: std::sync::Arc::new(LoginThrottle::new(
                args.login_max_failures,
                args.login_max_failures_per_ip,
                Duration::from_secs(args.login_failure_window_secs),
            )),
            default_quota: args.default_quota,
        })
    }

    pub async fn register(&self, user_name: &str, email: &str, password: String) -> Result<User, AuthError> {
        let name = UserName::parse(user_name)?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let passwords = self.passwords.clone();
        let hash = tokio::task::spawn_blocking(move || passwords.hash(&password))
            .await
            .map_err(|e| HashError::from_join(&e))??;
        Ok(self.users.create(&name, &email, hash, self.default_quota).await?)
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

    fn issue_pair(&self, user: &User, refresh_token: String) -> Result<TokenPair, AuthError> {
        Ok(TokenPair {
            access_token: self.tokens.issue(user.id, user.role),
            refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.tokens.ttl_secs(),
        })
    }
}

impl HashError {
    fn from_join(err: &tokio::task::JoinError) -> Self {
        HashError::new(format!("hashing task failed: {err}"))
    }
}
