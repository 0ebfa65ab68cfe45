//! Ending what a user holds: the one step every revocation takes.
//!
//! A user's credentials live in three places — browser sessions, refresh
//! token families and access tokens (ended by moving the user's
//! tokens-valid-after mark) — and a password sign-in waiting for its second
//! factor or for a new password is a fourth. A revocation that moves only
//! one of them leaves the others usable, so every path that takes a user's access away (an
//! administrator's MFA reset, a password change or reset, disabling,
//! deleting, "end sessions", and the confinement of a user for whom MFA
//! became required) goes through [`end_everything`], in the caller's write
//! transaction, next to the change and its audit event.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::identity::UserId;
use crate::store::WriteTx;

/// What becomes of the user's browser sessions.
#[derive(Debug, Clone, Copy)]
pub enum Sessions<'a> {
    /// Every session ends.
    End,
    /// Every session ends but this one (the session making the change).
    EndExcept(&'a [u8]),
    /// Every session ends but those an identity provider started; for a
    /// user who lost password sign-in (SSO enforced on them).
    EndPasswordMade,
    /// Password sessions stay but open MFA enrollment only (see
    /// `session::confine_to_enrollment`); for a user who must now set up a
    /// second factor before anything else.
    ConfineToEnrollment,
}

impl<'a> Sessions<'a> {
    /// `EndExcept(keep)` when there is a session to keep, else `End`.
    pub fn except(keep: Option<&'a [u8]>) -> Self {
        keep.map_or(Sessions::End, Sessions::EndExcept)
    }
}

/// What [`end_everything`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    /// Sessions ended, or confined for `Sessions::ConfineToEnrollment`.
    pub sessions: usize,
    /// Refresh-token families revoked.
    pub refresh_families: usize,
}

/// Ends every refresh-token family, every access token of `user` signed so
/// far and every pending MFA sign-in step, and ends (or confines) their browser sessions as `sessions` says,
/// all in `tx`.
pub fn end_everything(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    sessions: Sessions<'_>,
) -> Result<Ended> {
    let sessions = match sessions {
        Sessions::End => super::session::end_all_for_user_except(tx, user, None)?,
        Sessions::EndExcept(keep) => super::session::end_all_for_user_except(tx, user, Some(keep))?,
        Sessions::EndPasswordMade => super::session::end_password_made(tx, user)?,
        Sessions::ConfineToEnrollment => super::session::confine_to_enrollment(tx, user)?,
    };
    let refresh_families = super::refresh::revoke_all_for_user(tx, user)?;
    // A password step started before this cannot be finished after it.
    super::mfa::end_challenges(tx, user, now)?;
    super::onetime::end_password_steps(tx, user)?;
    crate::tokens::end_user_tokens(tx, user, now)?;
    Ok(Ended {
        sessions,
        refresh_families,
    })
}
