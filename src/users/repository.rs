use std::sync::LazyLock;

use chrono::Utc;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};
use tokio::sync::{Mutex, MutexGuard};

use super::fields::{Email, Quota, UserName};
use super::{Role, User, UserId};
use crate::db::{is_duplicate_key, Database, DbError, Transient};
use crate::error::{Coded, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user_name is already taken")]
    NameTaken,
    #[error("email is already registered")]
    EmailTaken,
    #[error("no such user")]
    NotFound,
    #[error("API request quota used up ({used} of {quota})")]
    QuotaExhausted { used: u32, quota: Quota },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for UserError {
    fn code(&self) -> ErrorCode {
        match self {
            UserError::NameTaken => ErrorCode::UserNameTaken,
            UserError::EmailTaken => ErrorCode::EmailTaken,
            UserError::NotFound => ErrorCode::NotFound,
            UserError::QuotaExhausted { .. } => ErrorCode::QuotaExhausted,
            UserError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            UserError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl Transient for UserError {
    fn is_transient(&self) -> bool {
        matches!(self, UserError::Db(e) if e.is_transient())
    }
}

impl From<mongodb::error::Error> for UserError {
    fn from(err: mongodb::error::Error) -> Self {
        UserError::Db(DbError::from_driver(err))
    }
}

/// Quota after one unit was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUse {
    pub used: u32,
    pub quota: Quota,
}

const CLAIMS: &str = "claims";
const FIRST_ADMIN: &str = "first_admin";

#[derive(Clone)]
pub struct Users {
    users: Collection<User>,
    claims: Collection<Document>,
}

impl Users {
    pub fn new(db: &Database) -> Self {
        Self {
            users: db.collection("users"),
            claims: db.collection(CLAIMS),
        }
    }

    /// Stores a new account. The first account ever becomes the admin: the
    /// race between two first registrations is settled by a unique claim
    /// document, not by counting users.
    pub async fn create(
        &self,
        name: &UserName,
        email: &Email,
        password_hash: String,
        quota: Quota,
    ) -> Result<User, UserError> {
        let claimed_admin = match self.claims.insert_one(doc! { "_id": FIRST_ADMIN }).await {
            Ok(_) => true,
            Err(err) if is_duplicate_key(&err) => false,
            Err(err) => return Err(err.into()),
        };
        let user = User {
            id: UserId(mongodb::bson::oid::ObjectId::new()),
            user_name: name.as_str().to_owned(),
            user_name_key: name.key(),
            email: email.as_str().to_owned(),
            password_hash,
            role: if claimed_admin { Role::Admin } else { Role::User },
            api_request_quota: quota,
            api_requests_used: 0,
            created_at: Utc::now(),
        };
        match self.users.insert_one(&user).await {
            Ok(_) => Ok(user),
            Err(err) => {
                if claimed_admin {
                    // Give the admin seat back: this registration did not happen.
                    let _ = self.claims.delete_one(doc! { "_id": FIRST_ADMIN }).await;
                }
                if is_duplicate_key(&err) {
                    let message = err.to_string();
                    Err(if message.contains("email_unique") {
                        UserError::EmailTaken
                    } else {
                        UserError::NameTaken
                    })
                } else {
                    Err(err.into())
                }
            }
        }
    }

    pub async fn find(&self, id: UserId) -> Result<Option<User>, UserError> {
        Ok(self.users.find_one(doc! { "_id": id.0 }).await?)
    }

    /// Looks a user up by user_name (any case) or, when it has an `@`, by email.
    pub async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserError> {
        let login = login.trim();
        let filter = if login.contains('@') {
            doc! { "email": login.to_lowercase() }
        } else {
            doc! { "user_name_key": login.to_ascii_lowercase() }
        };
        Ok(self.users.find_one(filter).await?)
    }

    /// Refuses early when the quota is used up, before any work is done for
    /// the request. Takes nothing: the unit is taken by [`Users::charge`]
    /// with what the request stores.
    pub async fn check_quota(&self, id: UserId) -> Result<QuotaUse, UserError> {
        let user = self.find(id).await?.ok_or(UserError::NotFound)?;
        let usage = QuotaUse {
            used: user.api_requests_used,
            quota: user.api_request_quota,
        };
        if usage.used >= usage.quota.0 {
            return Err(UserError::QuotaExhausted {
                used: usage.used,
                quota: usage.quota,
            });
        }
        Ok(usage)
    }

    /// This process's turn to charge `id`: held across the transaction that
    /// calls [`Users::charge`]. Transactions that update one account
    /// conflict, and on a busy account (a hundred uploads at once) the
    /// losers' retries would conflict again and again; taking turns in the
    /// process leaves conflicts only between instances, which retries
    /// settle. Striped by account, so the locks cost no bookkeeping.
    pub async fn charge_turn(id: UserId) -> MutexGuard<'static, ()> {
        static TURNS: LazyLock<Vec<Mutex<()>>> = LazyLock::new(|| (0..64).map(|_| Mutex::new(())).collect());
        let bytes = id.0.bytes();
        // The object id's counter: consecutive accounts land apart.
        let stripe = usize::from(bytes[11]) % TURNS.len();
        TURNS[stripe].lock().await
    }

    /// Takes one unit of quota inside the transaction that stores what it
    /// pays for: the unit and the record are committed together or not at
    /// all, so a crash or an outage at any point charges exactly what was
    /// stored. One conditional update, so concurrent requests (on any
    /// number of vigil instances) can never overdraw it; the last unit
    /// goes to the first commit.
    pub async fn charge(&self, id: UserId, session: &mut ClientSession) -> Result<QuotaUse, UserError> {
        let updated = self
            .users
            .find_one_and_update(
                doc! { "_id": id.0, "$expr": { "$lt": ["$api_requests_used", "$api_request_quota"] } },
                doc! { "$inc": { "api_requests_used": 1 } },
            )
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?;
        match updated {
            Some(user) => Ok(QuotaUse {
                used: user.api_requests_used,
                quota: user.api_request_quota,
            }),
            None => match self.users.find_one(doc! { "_id": id.0 }).session(session).await? {
                Some(user) => Err(UserError::QuotaExhausted {
                    used: user.api_requests_used,
                    quota: user.api_request_quota,
                }),
                None => Err(UserError::NotFound),
            },
        }
    }

    /// Gives back the unit an accepted request paid for, inside the
    /// transaction that records it never produced anything (an asynchronous
    /// upload whose job failed for good).
    pub async fn refund(&self, id: UserId, session: &mut ClientSession) -> Result<(), UserError> {
        self.users
            .update_one(
                doc! { "_id": id.0, "api_requests_used": { "$gt": 0 } },
                doc! { "$inc": { "api_requests_used": -1 } },
            )
            .session(session)
            .await?;
        Ok(())
    }

    pub async fn set_quota(&self, id: UserId, quota: Quota) -> Result<User, UserError> {
        self.users
            .find_one_and_update(
                doc! { "_id": id.0 },
                doc! { "$set": { "api_request_quota": i64::from(quota.0) } },
            )
            .return_document(ReturnDocument::After)
            .await?
            .ok_or(UserError::NotFound)
    }

    /// Makes a user an admin; returns false when it already was one.
    pub async fn promote(&self, name: &UserName) -> Result<bool, UserError> {
        let user = self
            .users
            .find_one_and_update(
                doc! { "user_name_key": name.key() },
                doc! { "$set": { "role": "admin" } },
            )
            .await?
            .ok_or(UserError::NotFound)?;
        Ok(user.role != Role::Admin)
    }

    /// Takes the admin role away; returns false when it was not an admin.
    pub async fn demote(&self, name: &UserName) -> Result<bool, UserError> {
        let user = self
            .users
            .find_one_and_update(
                doc! { "user_name_key": name.key() },
                doc! { "$set": { "role": "user" } },
            )
            .await?
            .ok_or(UserError::NotFound)?;
        Ok(user.role == Role::Admin)
    }

    /// Deletes the account named `name` inside the caller's transaction.
    pub async fn delete(&self, name: &UserName, session: &mut ClientSession) -> Result<User, UserError> {
        self.users
            .find_one_and_delete(doc! { "user_name_key": name.key() })
            .session(session)
            .await?
            .ok_or(UserError::NotFound)
    }

    /// Every admin's id: camera frames are matched against their galleries.
    pub async fn admin_ids(&self) -> Result<Vec<UserId>, UserError> {
        let ids = crate::db::ids_matching(&self.users, doc! { "role": "admin" }).await?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}
