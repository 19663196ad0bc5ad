//! Who is calling, once their credentials have been checked.

use super::api_keys::{ApiKeyId, KeyScope};
use super::rate_limit::RateKey;
use crate::users::{Role, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    AccessToken,
    ApiKey(ApiKeyId, KeyScope),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// What the credential allows; access tokens allow everything.
    pub fn scope(&self) -> KeyScope {
        match self.credential {
            Credential::AccessToken => KeyScope::Full,
            Credential::ApiKey(_, scope) => scope,
        }
    }

    /// API keys get their own bucket: a busy machine client must not starve
    /// its owner's interactive use.
    pub fn rate_key(&self) -> RateKey {
        match self.credential {
            Credential::AccessToken => RateKey::User(self.user_id),
            Credential::ApiKey(id, _) => RateKey::ApiKey(id),
        }
    }
}
