//! The crate's error type: every module's error, in one enum for callers that only pass
//! errors on. HTTP mapping lives in `server::error`; CLI mapping in `cli`. It names the
//! errors of the modules up to `auth`, so it sits on layer 6, above everything it wraps;
//! those modules return their own errors and never this one.

use crate::audit::AuditError;
use crate::auth::AuthError;
use crate::auth::users::AccountError;
use crate::config::ConfigError;
use crate::fsutil::IoError;
use crate::keys::secrets::SecretsError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;
use crate::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
