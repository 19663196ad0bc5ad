//! `vigil client login` and `logout`: tokens for a server, kept in the
//! token store so that the other subcommands need no API key.

use std::io::{BufRead, IsTerminal};

use super::api::ApiClient;
use super::error::ClientError;
use super::tokens::TokenStore;

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Your user name or email.
    #[arg(long = "user", value_name = "NAME_OR_EMAIL")]
    pub login: String,

    /// Read the password from the first line of stdin (also done whenever stdin is not a terminal).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Longest password the server accepts; a longer line is surely not one.
const MAX_PASSWORD: usize = 128;

fn read_password(args: &LoginArgs) -> Result<String, String> {
    let password = if args.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        rpassword::prompt_password(format!("Password for {}: ", args.login))
            .map_err(|e| format!("cannot read the password: {e}"))?
    };
    if password.is_empty() {
        return Err("no password given".into());
    }
    if password.chars().count() > MAX_PASSWORD {
        return Err(format!("a password has at most {MAX_PASSWORD} characters"));
    }
    Ok(password)
}

pub async fn login(api: &ApiClient, store: &TokenStore, args: LoginArgs) -> Result<(), ClientError> {
    let password = read_password(&args).map_err(ClientError::Input)?;
    let tokens = api.login(&args.login, &password).await?;
    store.save(api.server().key(), &tokens)?;
    eprintln!(
        "logged in to {} as {}; tokens kept in {}",
        api.server().key(),
        args.login,
        store.path().display()
    );
    Ok(())
}

/// Revokes the stored login on the server and forgets it here. Forgotten
/// here even when the server cannot be told (it expires by itself).
pub async fn logout(api: &ApiClient, store: &TokenStore) -> Result<(), ClientError> {
    let server = api.server().key();
    let Some(tokens) = store.load(server)? else {
        eprintln!("not logged in to {server}");
        return Ok(());
    };
    let revoked = api.logout(&tokens.refresh_token).await;
    store.remove(server)?;
    match revoked {
        Ok(()) => eprintln!("logged out of {server}"),
        Err(e) => eprintln!("forgot the login for {server}, but the server was not told: {e}"),
    }
    Ok(())
}
