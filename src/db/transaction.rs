//! Several writes as one: committed together, or (on any failure on the
//! way) aborted together, so a database failure never leaves half of them.

/// `in_transaction!(db, |session| async { … Ok::<_, DbError>(value) })`:
/// runs the block with `session: &mut ClientSession` inside a transaction
/// and evaluates to `Result<value, DbError>`. A macro rather than a
/// function because the block borrows the session it is given.
#[macro_export]
macro_rules! in_transaction {
    ($db:expr, |$session:ident| $work:expr) => {{
        async {
            let mut session = $db.client().start_session().await?;
            session.start_transaction().await?;
            let result: Result<_, $crate::db::DbError> = {
                let $session: &mut mongodb::ClientSession = &mut session;
                $work.await
            };
            match result {
                Ok(value) => {
                    session.commit_transaction().await?;
                    Ok::<_, $crate::db::DbError>(value)
                }
                Err(err) => {
                    let _ = session.abort_transaction().await;
                    Err(err)
                }
            }
        }
        .await
    }};
}
