//! The `?notice=` codes, one enum per console page: each names the code in
//! the URL (serde and [`PageNotice::code`]) and the sentence the page shows.
//! A redirect names a notice of the page it goes to; a page parses only its
//! own codes, and an unknown code shows nothing.

use serde::{Deserialize, Deserializer};

/// A page's notice: its code in the URL and its text on the page.
pub(crate) trait PageNotice: Sized + Copy {
    fn code(self) -> &'static str;
    fn text(self) -> &'static str;
    fn parse(code: &str) -> Option<Self>;
}

macro_rules! notices {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:literal => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub(crate) enum $name {
            $($(#[$vm])* #[serde(rename = $code)] $v,)*
        }
        impl PageNotice for $name {
            fn code(self) -> &'static str {
                match self { $(Self::$v => $code,)* }
            }
            fn text(self) -> &'static str {
                match self { $(Self::$v => $text,)* }
            }
            fn parse(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$v),)* _ => None }
            }
        }
    };
}

notices! {
    /// `/login`: after recovery, or an expired MFA step.
    LoginNotice {
        Recovered = "recovered" => "Password set. Sign in with it now.",
        MfaExpired = "mfa_expired" => "The sign-in step expired; sign in again.",
    }
}

notices! {
    /// `/admin/users`: the user list.
    UsersNotice {
        Created = "created" => "User created.",
        Deleted = "deleted" => "User deleted.",
    }
}

notices! {
    /// `/admin/users/{id}`: one user's page.
    UserNotice {
        Disabled = "disabled" => "User disabled; their sessions and tokens have ended.",
        Enabled = "enabled" => "User enabled.",
        Saved = "saved" => "Changes saved.",
        Reset = "reset" => "Password reset; the user's sessions and tokens have ended.",
        ResetTemporary = "reset_temporary" => "Temporary password set; the user's sessions and tokens have ended, and they choose a new password at their next sign-in.",
        Unlocked = "unlocked" => "Account unlocked.",
        SessionsEnded = "sessions_ended" => "All of the user's sessions and tokens have ended.",
        MfaReset = "mfa_reset" => "The user's second factors were reset; they enroll again.",
        LinkReapproved = "link_reapproved" => "SSO link approved again: it signs the user in with what they hold now.",
    }
}

notices! {
    /// `/admin/account`: the signed-in user's own account.
    AccountNotice {
        Password = "password" => "Password changed.",
        Ended = "ended" => "Session ended.",
        EndedOthers = "ended_others" => "All your other sessions and your access tokens have ended.",
        RecoveryUsed = "recovery_used" => "You signed in with a recovery code; it no longer works. Check how many remain below.",
        MfaOn = "mfa_on" => "Second factor active.",
        MfaOff = "mfa_off" => "Two-factor authentication removed.",
    }
}

notices! {
    /// `/admin/keys`: the data keys.
    KeysNotice {
        Rotated = "rotated" => "A new data key is active. Records are being re-sealed in the background.",
    }
}

notices! {
    /// `/admin/settings/security`: the security policy.
    SettingsNotice {
        Saved = "saved" => "Security settings saved.",
    }
}

notices! {
    /// `/admin/settings/sso`: the single sign-on settings and connection list.
    SsoNotice {
        Saved = "sso_saved" => "Single sign-on settings saved.",
        Deleted = "sso_deleted" => "Connection deleted.",
    }
}

notices! {
    /// `/admin/settings/sso/{id}`: one connection.
    ConnectionNotice {
        Created = "sso_created" => "Connection created. Paste the values below into the identity provider, then run Test connection.",
        Updated = "sso_updated" => "Connection saved.",
        Tested = "tested" => "Test sign-in passed: the identity provider's answer is valid.",
        TestFailed = "test_failed" => "Test sign-in failed; the reason is below.",
    }
}

notices! {
    /// `/admin/workspaces/{id}/secrets`: a workspace's secrets store.
    SecretsNotice {
        Written = "written" => "New version written.",
        Deleted = "deleted" => "Version deleted; it can be undeleted.",
        Undeleted = "undeleted" => "Version undeleted.",
        Destroyed = "destroyed" => "Version destroyed: its value is gone for good.",
    }
}

/// `path?notice=code`: where a redirect sends the browser to show `n`.
pub(crate) fn notice_url(path: &str, n: impl PageNotice) -> String {
    format!("{path}?notice={}", n.code())
}

/// The text a page shows for its notice, if any.
pub(crate) fn notice_text(n: Option<impl PageNotice>) -> Option<String> {
    n.map(|n| n.text().to_string())
}

/// A `notice` query value: a code the page does not know is no notice.
pub(crate) fn lenient<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
where
    D: Deserializer<'de>,
    N: PageNotice,
{
    Ok(Option::<String>::deserialize(d)?
        .as_deref()
        .and_then(N::parse))
}

/// `?notice=…` on a console page.
#[derive(Deserialize)]
#[serde(bound = "")]
pub(crate) struct Notice<N: PageNotice> {
    #[serde(default, deserialize_with = "lenient")]
    pub(crate) notice: Option<N>,
}
