//! Whose an object made from the console is when the command names no account: the
//! only enabled administrator. A leaf, shared by the admin commands.

use crate::admin::protocol::CommandError;
use crate::server::state::Services;

/// The account a console-made token belongs to when `--owner` is not given.
pub fn sole_admin(services: &Services) -> Result<crate::auth::users::UserRecord, CommandError> {
    let admins: Vec<_> = services
        .auth
        .accounts
        .list()
        .map_err(|e| CommandError::failed("auth.token_create", e))?
        .into_iter()
        .filter(|u| !u.disabled && u.scopes.allows(crate::auth::scopes::Scope::Admin))
        .collect();
    match <[_; 1]>::try_from(admins) {
        Ok([admin]) => Ok(admin),
        Err(admins) if admins.is_empty() => Err(CommandError::NoAdministrator),
        Err(_) => Err(CommandError::SeveralAdministrators),
    }
}
