//! Logging in the way the partner's server asks: a key, a password, the
//! password through keyboard-interactive, or a key and then a password
//! (`AuthenticationMethods publickey,password`). One attempt per method:
//! a refused password is reported, never retried (no lock-out storm), and
//! the password itself goes nowhere but the encrypted SSH channel — it is
//! read from its 0600 file when connecting, held in a type without
//! `Debug`, and never formatted.

use std::path::Path;
use std::sync::Arc;

use russh::client::{Handle, KeyboardInteractiveAuthResponse};
use russh::keys::PrivateKeyWithHashAlg;
use russh::{MethodKind, MethodSet};

use super::{Pinned, SftpError};
use crate::config::SftpTarget;

/// How a session logged in, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUsed {
    /// What the server offered before we tried anything.
    pub offered: Vec<&'static str>,
    /// What got us in, in order (`publickey`, then `password`…).
    pub used: Vec<&'static str>,
}

/// The SFTP password: no `Debug`, no `Display`.
struct Password(String);

impl Password {
    fn read(path: &Path) -> Result<Password, SftpError> {
        let problem = |problem: String| SftpError::Secret {
            path: path.to_owned(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(problem("is empty".into()));
        }
        if line.contains('\n') {
            return Err(problem("holds more than one line".into()));
        }
        Ok(Password(line.to_owned()))
    }
}

fn names(methods: &MethodSet) -> Vec<&'static str> {
    methods.iter().map(<&'static str>::from).collect()
}

/// What one step of the exchange left us with.
enum Step {
    In,
    /// Accepted, but the server wants another method too.
    Partial(MethodSet),
    Refused(MethodSet),
}

fn step(result: russh::client::AuthResult) -> Step {
    match result {
        russh::client::AuthResult::Success => Step::In,
        russh::client::AuthResult::Failure {
            remaining_methods,
            partial_success: true,
        } => Step::Partial(remaining_methods),
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => Step::Refused(remaining_methods),
    }
}

pub(super) async fn log_in(
    ssh: &mut Handle<Pinned>,
    target: &SftpTarget,
    host: &str,
) -> Result<LoginUsed, SftpError> {
    let ssh_error = |source| SftpError::Ssh {
        host: host.to_owned(),
        source,
    };
    let user = target.user.as_str();
    let mut offered = match step(ssh.authenticate_none(user).await.map_err(ssh_error)?) {
        Step::In => {
            return Ok(LoginUsed {
                offered: Vec::new(),
                used: vec!["none"],
            })
        }
        Step::Partial(m) | Step::Refused(m) => m,
    };
    let mut login = LoginUsed {
        offered: names(&offered),
        used: Vec::new(),
    };
    let refused = |tried: &[&'static str], offered: &MethodSet| SftpError::LoginRefused {
        host: host.to_owned(),
        user: user.to_owned(),
        tried: tried.join(" then "),
        offered: names(offered).join(", "),
    };
    let mut tried: Vec<&'static str> = Vec::new();
    if let Some(key_file) = &target.key_file {
        if offered.contains(&MethodKind::PublicKey) {
            let key = russh::keys::load_secret_key(key_file, None).map_err(|e| SftpError::Key {
                path: key_file.clone(),
                problem: e.to_string(),
            })?;
            let hash = ssh
                .best_supported_rsa_hash()
                .await
                .map_err(ssh_error)?
                .flatten();
            tried.push("publickey");
            let result = ssh
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                .await
                .map_err(ssh_error)?;
            match step(result) {
                Step::In => {
                    login.used.push("publickey");
                    return Ok(login);
                }
                Step::Partial(next) => {
                    login.used.push("publickey");
                    offered = next;
                }
                // A refused key with a password to try: the server may
                // take the password alone.
                Step::Refused(next) if target.password_file.is_some() => offered = next,
                Step::Refused(next) => return Err(refused(&tried, &next)),
            }
        }
    }
    let Some(password_file) = &target.password_file else {
        return Err(refused(&tried, &offered));
    };
    let password = Password::read(password_file)?;
    let result = if offered.contains(&MethodKind::Password) {
        tried.push("password");
        step(
            ssh.authenticate_password(user, password.0.as_str())
                .await
                .map_err(ssh_error)?,
        )
    } else if offered.contains(&MethodKind::KeyboardInteractive) {
        tried.push("keyboard-interactive");
        keyboard_interactive(ssh, user, &password, host).await?
    } else {
        return Err(refused(&tried, &offered));
    };
    match result {
        Step::In => {
            login.used.push(tried.last().copied().unwrap_or("password"));
            Ok(login)
        }
        Step::Partial(next) | Step::Refused(next) => Err(refused(&tried, &next)),
    }
}

/// Answers the server's prompts: the password, once, to the one hidden
/// prompt it asks for; empty rounds (OpenSSH's PAM sends one) are
/// answered empty. Asked again, the password was wrong: stop.
async fn keyboard_interactive(
    ssh: &mut Handle<Pinned>,
    user: &str,
    password: &Password,
    host: &str,
) -> Result<Step, SftpError> {
    let ssh_error = |source| SftpError::Ssh {
        host: host.to_owned(),
        source,
    };
    let mut answered = false;
    let mut reply = ssh
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .map_err(ssh_error)?;
    for _ in 0..8 {
        let responses = match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(Step::In),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods,
                partial_success: true,
            } => return Ok(Step::Partial(remaining_methods)),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods, ..
            } => return Ok(Step::Refused(remaining_methods)),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                if prompts.is_empty() {
                    Vec::new()
                } else if prompts.len() == 1 && !prompts[0].echo && !answered {
                    answered = true;
                    vec![password.0.clone()]
                } else if answered {
                    // Asked for the password again: it was refused.
                    return Ok(Step::Refused(MethodSet::from(
                        &[MethodKind::KeyboardInteractive][..],
                    )));
                } else {
                    return Err(SftpError::UnexpectedPrompt {
                        host: host.to_owned(),
                        prompts: prompts.len(),
                    });
                }
            }
        };
        reply = ssh
            .authenticate_keyboard_interactive_respond(responses)
            .await
            .map_err(ssh_error)?;
    }
    Ok(Step::Refused(MethodSet::from(
        &[MethodKind::KeyboardInteractive][..],
    )))
}
