//! `/api/v1/me` and `/api/v1/users/*`: the caller, and user administration
//! (list, create, read, update, disable/enable, delete, unlock, password reset,
//! ending a user's sessions).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, ErrorBody, paging};
use crate::authn::{self, password::Password};
use crate::clock::rfc3339;
use crate::identity::{Email, NewUser, Role, User, UserId};
use crate::users::{self, UserUpdate};
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
    /// Set while failed sign-ins keep the account locked.
    pub locked_until: Option<String>,
    /// An administrator set a temporary password: the user chooses a new
    /// one at their next sign-in.
    pub must_change_password: bool,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            id: u.id.as_str().into(),
            email: u.email.as_str().into(),
            name: u.name.clone(),
            role: u.role,
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            last_login_at: None,
            locked_until: None,
            must_change_password: u.must_change_password,
        }
    }
}

/// The caller (bearer token or session cookie).
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = UserDto), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn me(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let user = caller.user()?;
    let (last, locked) = authn::sign_in_state(&st.svc, &user.id, st.svc.now())?;
    let mut dto = UserDto::from(user);
    dto.last_login_at = last.map(rfc3339);
    dto.locked_until = locked.map(rfc3339);
    Ok(HttpResponse::Ok().json(dto))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Substring of e-mail or name.
    pub q: Option<String>,
    /// 1-based page number.
    pub page: Option<usize>,
    /// Items per page (1–200, default 50).
    pub per_page: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserDto>,
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
}

impl UserDto {
    /// The DTO with the user's lock state and last sign-in.
    fn with_state(mut self, s: &authn::queries::UserStatus) -> Self {
        self.locked_until = s.locked_until.map(rfc3339);
        self.last_login_at = s.last_sign_in.map(rfc3339);
        self
    }
}

/// Users, searched and paged.
#[utoipa::path(get, path = "/api/v1/users", params(ListQuery), responses((status = 200, body = UserList)))]
pub(super) async fn list_users(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ListQuery>,
) -> ApiResult {
    let (mut page, mut per) = (1, 1);
    // One snapshot for the page and every user's lock state.
    let (users, total) = authn::queries::users_for(
        &st.svc,
        &caller.actor(&req),
        q.q.as_deref().unwrap_or(""),
        || {
            (page, per) = paging(q.page, q.per_page)?;
            Ok(((page - 1) * per, per))
        },
    )?;
    Ok(HttpResponse::Ok().json(UserList {
        users: users
            .iter()
            .map(|(u, s)| UserDto::from(u).with_state(s))
            .collect(),
        total,
        page,
        per_page: per,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUserRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    pub name: Option<String>,
    /// `admin` or `user` (default).
    pub role: Option<String>,
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", request_body = CreateUserRequest,
    responses((status = 201, body = UserDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn create_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateUserRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let new = NewUser {
        email: Email::parse(&body.email)?,
        name: body.name.unwrap_or_default(),
        password: body.password,
        role: body
            .role
            .as_deref()
            .map(Role::parse)
            .transpose()?
            .unwrap_or(Role::User),
    };
    let user = users::create(&st.svc, &caller.actor(&req), new).await?;
    Ok(HttpResponse::Created().json(UserDto::from(&user)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)))]
pub(super) async fn get_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let (user, status) = authn::queries::user_for(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user).with_state(&status)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// Change name, e-mail, role or disabled state.
#[utoipa::path(patch, path = "/api/v1/users/{id}", params(("id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn update_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateUserRequest>,
) -> ApiResult {
    let b = body.into_inner();
    let up = UserUpdate {
        name: b.name,
        email: b.email.as_deref().map(Email::parse).transpose()?,
        role: b.role.as_deref().map(Role::parse).transpose()?,
        disabled: b.disabled,
    };
    let user = users::update(&st.svc, &caller.actor(&req), &UserId::parse(&id)?, up)?;
    let status = authn::queries::status(&st.svc, &user.id)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user).with_state(&status)))
}

pub(super) async fn set_disabled(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: &str,
    disabled: bool,
) -> ApiResult {
    let up = UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    let user = users::update(&st.svc, &caller.actor(&req), &UserId::parse(id)?, up)?;
    let status = authn::queries::status(&st.svc, &user.id)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user).with_state(&status)))
}

/// Disable a user: their sessions, refresh and access tokens end at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", params(("id" = String, Path)), responses((status = 200, body = UserDto)))]
pub(super) async fn disable_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    set_disabled(req, st, caller, &id, true).await
}

/// Enable a disabled user.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", params(("id" = String, Path)), responses((status = 200, body = UserDto)))]
pub(super) async fn enable_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    set_disabled(req, st, caller, &id, false).await
}

/// Delete a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    users::delete(&st.svc, &caller.actor(&req), &UserId::parse(&id)?)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The user must choose a new password at their next sign-in (in the
    /// console; API sign-ins are refused until then). Default `false`.
    #[serde(default)]
    pub temporary: bool,
}

/// Lift a lockout caused by failed sign-ins.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)))]
pub(super) async fn unlock_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let uid = UserId::parse(&id)?;
    authn::lockout::unlock(&st.svc, &caller.actor(&req), &uid)?;
    let (user, status) = authn::queries::user(&st.svc, &uid)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user).with_state(&status)))
}

/// Set a new password for a user (ends their sessions, refresh and access tokens).
#[utoipa::path(post, path = "/api/v1/users/{id}/password", params(("id" = String, Path)), request_body = PasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub(super) async fn reset_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<PasswordRequest>,
) -> ApiResult {
    let uid = UserId::parse(&id)?;
    let b = body.into_inner();
    users::set_password(
        &st.svc,
        &caller.actor(&req),
        &uid,
        b.password,
        "user.password_reset",
        b.temporary,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct OwnPasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: Password,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// Change the caller's own password with the current one (ends every
/// session, refresh and access token, this one included).
#[utoipa::path(post, path = "/api/v1/me/password", request_body = OwnPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn change_own_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<OwnPasswordRequest>,
) -> ApiResult {
    let b = body.into_inner();
    users::change_password(
        &st.svc,
        &caller.actor(&req),
        &b.current_password,
        b.password,
        None,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct OwnEmailRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The factor `code` is from: `totp`, `email`, `sms` or `recovery_code`
    /// (default: the first enrolled).
    pub method: Option<String>,
    pub code: Option<String>,
}

/// Change the caller's own e-mail address, with the password and a current code.
#[utoipa::path(post, path = "/api/v1/me/email", request_body = OwnEmailRequest,
    responses((status = 200, body = UserDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn change_own_email(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<OwnEmailRequest>,
) -> ApiResult {
    let email = Email::parse(&body.email)?;
    let proof = authn::Proof {
        password: &body.password,
        method: authn::mfa::MfaMethod::parse_opt(body.method.as_deref())?,
        code: body.code.as_deref(),
    };
    let user = users::change_own_email(&st.svc, &caller.actor(&req), email, &proof).await?;
    let status = authn::queries::status(&st.svc, &user.id)?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user).with_state(&status)))
}

/// End every session, refresh token and access token of a user (an admin,
/// or the user themselves — the calling token ends too).
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/end", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub(super) async fn end_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let uid = UserId::parse(&id)?;
    authn::end_user_sessions(&st.svc, &caller.actor(&req), &uid)?;
    Ok(HttpResponse::NoContent().finish())
}
