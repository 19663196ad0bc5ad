//! Closing an account: the account and every credential it issued go in
//! one transaction, so no token, refresh token or API key of it outlives
//! it. Running servers learn of it through their account directory
//! ([`crate::users::AccountDirectory`]) and refuse its access tokens, which
//! are not stored anywhere, from the next request on.

use super::api_keys::ApiKeys;
use super::refresh::RefreshTokens;
use super::AuthError;
use crate::db::Database;
use crate::users::fields::UserName;
use crate::users::{User, Users};

/// What closing an account removed.
#[derive(Debug)]
pub struct ClosedAccount {
    pub user: User,
    pub api_keys: u64,
    pub refresh_tokens: u64,
}

/// Deletes the account named `name` with its API keys and refresh tokens.
pub async fn close_account(db: &Database, name: &UserName) -> Result<ClosedAccount, AuthError> {
    let users = Users::new(db);
    let keys = ApiKeys::new(db);
    // The TTL only shapes new tokens; none is issued here.
    let refresh = RefreshTokens::new(db, std::time::Duration::ZERO);
    crate::in_transaction!(db, AuthError, |session| async {
        let user = users.delete(name, session).await?;
        let api_keys = keys.delete_all_of(user.id, session).await?;
        let refresh_tokens = refresh.delete_all_of(user.id, session).await?;
        Ok(ClosedAccount {
            user,
            api_keys,
            refresh_tokens,
        })
    })
}
