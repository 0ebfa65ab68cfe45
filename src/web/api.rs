//! `/api/v1`: the JSON management API, and its OpenAPI document generated from
//! these handlers and types. Each handler: authorize, parse, one domain call, render.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::access::{self, Permission, Resource};
use crate::audit;
use crate::authn::{self, Channel, Grant, TokenPair, password::Password};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{self, Email, NewUser, Role, User, UserId, UserUpdate};
use crate::keys;
use crate::store::KeyVersionStatus;
use crate::web::AppState;
use crate::web::auth::{ApiCaller, source};
use crate::web::error::ApiError;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/openapi.json", web::get().to(openapi))
            .route("/auth/login", web::post().to(login))
            .route("/auth/refresh", web::post().to(refresh))
            .route("/auth/mfa", web::post().to(mfa_complete))
            .route("/auth/mfa/send", web::post().to(mfa_send))
            .route("/me/mfa/email", web::post().to(email_start))
            .route("/me/mfa/email/confirm", web::post().to(email_confirm))
            .route("/me/mfa/sms", web::post().to(sms_start))
            .route("/me/mfa/sms/confirm", web::post().to(sms_confirm))
            .route("/me/mfa/methods/{method}", web::delete().to(method_remove))
            .route("/me/mfa/code", web::post().to(proof_code_send))
            .route("/me/mfa", web::get().to(my_mfa))
            .route("/me/mfa", web::delete().to(mfa_remove))
            .route("/me/mfa/totp", web::post().to(totp_start))
            .route("/me/mfa/totp/confirm", web::post().to(totp_confirm))
            .route(
                "/me/mfa/recovery-codes",
                web::post().to(recovery_regenerate),
            )
            .route("/users/{id}/mfa/reset", web::post().to(mfa_reset))
            .route("/users/{id}/sessions/end", web::post().to(end_sessions))
            .route("/settings/security", web::get().to(get_security))
            .route("/settings/security", web::put().to(put_security))
            .route("/me", web::get().to(me))
            .route("/users", web::get().to(list_users))
            .route("/users", web::post().to(create_user))
            .route("/users/{id}", web::get().to(get_user))
            .route("/users/{id}", web::patch().to(update_user))
            .route("/users/{id}", web::delete().to(delete_user))
            .route("/users/{id}/disable", web::post().to(disable_user))
            .route("/users/{id}/enable", web::post().to(enable_user))
            .route("/users/{id}/password", web::post().to(reset_password))
            .route("/users/{id}/unlock", web::post().to(unlock_user))
            .route("/audit", web::get().to(audit_log))
            .route("/keys", web::get().to(key_status))
            .route("/keys/rotate", web::post().to(rotate_keys))
            .configure(super::api_access::routes)
            .configure(super::sso::api_routes),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "Management and sign-in API of Gatehouse."
    ),
    paths(
        login,
        refresh,
        mfa_complete,
        mfa_send,
        email_start,
        email_confirm,
        sms_start,
        sms_confirm,
        method_remove,
        proof_code_send,
        my_mfa,
        totp_start,
        totp_confirm,
        recovery_regenerate,
        mfa_remove,
        mfa_reset,
        end_sessions,
        get_security,
        put_security,
        me,
        list_users,
        create_user,
        get_user,
        update_user,
        delete_user,
        disable_user,
        enable_user,
        reset_password,
        audit_log,
        key_status,
        rotate_keys
    ),
    components(schemas(
        MfaRequired,
        SendCodeRequest,
        PhoneRequest,
        ProofRequest,
        MethodRequest,
        Sent,
        MfaRequest,
        TotpEnrollment,
        CodeRequest,
        RecoveryCodes,
        authn::mfa::MfaSummary,
        crate::policy::SecurityPolicy,
        crate::policy::MfaPolicy,
        crate::policy::SessionPolicy,
        crate::policy::MfaMode,
        ErrorBody,
        ErrorDetail,
        LoginRequest,
        RefreshRequest,
        TokenPair,
        UserDto,
        UserList,
        CreateUserRequest,
        UpdateUserRequest,
        PasswordRequest,
        AuditPage,
        audit::Event,
        KeyDto,
        RotateResponse,
        Role
    ))
)]
struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body({
        let mut doc = ApiDoc::openapi();
        doc.merge(super::api_access::openapi_doc());
        doc.merge(super::sso::openapi_doc());
        doc.to_json().unwrap_or_default()
    })
}

/// Every error: `{"error": {"code": "snake_case", "message": "what to do"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// Exchange e-mail and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody, description = "invalid credentials")))]
async fn login(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult {
    let (_, grant) = authn::login(
        &st.svc,
        &body.email,
        &body.password,
        &source(&req),
        Channel::Api,
    )
    .await?;
    match grant {
        Grant::Tokens(pair) => Ok(HttpResponse::Ok().json(pair)),
        Grant::Mfa { mfa_token, methods } => Ok(HttpResponse::Ok().json(MfaRequired {
            mfa_required: true,
            mfa_token,
            methods,
        })),
        Grant::Session { .. } => Err(Error::internal("session grant on the API channel").into()),
    }
}

/// Answer to a correct password when a second factor is due.
#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    pub mfa_required: bool,
    /// Single-use, 5 minutes, good for `POST /api/v1/auth/mfa` only.
    pub mfa_token: String,
    pub methods: Vec<&'static str>,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaRequest {
    pub mfa_token: String,
    /// `totp` or `recovery_code`.
    pub method: String,
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaTokens {
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// Present when a recovery code was used: how many are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_remaining: Option<usize>,
}

/// Complete a sign-in with the second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa", request_body = MfaRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody, description = "wrong or replayed code, or expired mfa_token")))]
async fn mfa_complete(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<MfaRequest>,
) -> ApiResult {
    let (_, grant, remaining) = authn::complete_mfa(
        &st.svc,
        &body.mfa_token,
        &body.method,
        &body.code,
        &source(&req),
        Channel::Api,
    )?;
    match grant {
        Grant::Tokens(tokens) => Ok(HttpResponse::Ok().json(MfaTokens {
            tokens,
            recovery_codes_remaining: remaining,
        })),
        _ => Err(Error::internal("unexpected grant on the API channel").into()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SendCodeRequest {
    pub mfa_token: String,
    /// `email` or `sms`.
    pub method: String,
}

#[derive(Serialize, ToSchema)]
pub struct Sent {
    pub sent: bool,
    /// Seconds the code stays valid.
    pub expires_in: i64,
}

fn sent() -> HttpResponse {
    HttpResponse::Accepted().json(Sent {
        sent: true,
        expires_in: authn::mfa::CODE_TTL_SECS,
    })
}

/// During sign-in: send an e-mail or SMS code for the `mfa_token` (at most one per 30 s).
#[utoipa::path(post, path = "/api/v1/auth/mfa/send", request_body = SendCodeRequest,
    responses((status = 202, body = Sent), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "sent too recently")))]
async fn mfa_send(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<SendCodeRequest>,
) -> ApiResult {
    authn::mfa::send_challenge_code(&st.svc, &body.mfa_token, &body.method, &source(&req)).await?;
    Ok(sent())
}

/// Start e-mail codes: a code goes to the account's address; confirm it.
#[utoipa::path(post, path = "/api/v1/me/mfa/email", responses((status = 202, body = Sent)))]
async fn email_start(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    authn::mfa::start_code_enrollment(&st.svc, caller.user()?, "email", None).await?;
    Ok(sent())
}

/// Activate e-mail codes with the code that was sent.
#[utoipa::path(post, path = "/api/v1/me/mfa/email/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
async fn email_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_code_enrollment(
        &st.svc,
        caller.user()?,
        "email",
        &body.code,
        &source(&req),
    )?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PhoneRequest {
    /// International format, e.g. +4915112345678.
    pub phone: String,
}

/// Start SMS codes: a code goes to `phone`; confirm it.
#[utoipa::path(post, path = "/api/v1/me/mfa/sms", request_body = PhoneRequest, responses((status = 202, body = Sent)))]
async fn sms_start(
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<PhoneRequest>,
) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    authn::mfa::start_code_enrollment(&st.svc, caller.user()?, "sms", Some(&body.phone)).await?;
    Ok(sent())
}

/// Activate SMS codes with the code that was sent.
#[utoipa::path(post, path = "/api/v1/me/mfa/sms/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
async fn sms_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_code_enrollment(
        &st.svc,
        caller.user()?,
        "sms",
        &body.code,
        &source(&req),
    )?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Proof that the caller is the user: the current password and, when any
/// second factor is enrolled, a current code from one of them.
#[derive(Deserialize, ToSchema)]
pub struct ProofRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The factor `code` is from: `totp`, `email`, `sms` or `recovery_code`
    /// (default: the first enrolled).
    pub method: Option<String>,
    pub code: Option<String>,
}

impl ProofRequest {
    fn proof(&self) -> authn::Proof<'_> {
        authn::Proof {
            password: &self.password,
            method: self.method.as_deref(),
            code: self.code.as_deref(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct MethodRequest {
    /// `email` or `sms`.
    pub method: String,
}

/// Send an e-mail or SMS code to prove a current factor (for removing
/// factors); at most one per 30 s and a daily number per method.
#[utoipa::path(post, path = "/api/v1/me/mfa/code", request_body = MethodRequest,
    responses((status = 202, body = Sent), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "sent too recently or the daily limit is reached")))]
async fn proof_code_send(
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<MethodRequest>,
) -> ApiResult {
    authn::mfa::send_reauth_code(&st.svc, caller.user()?, &body.method).await?;
    Ok(sent())
}

/// Remove one of the caller's methods (`totp`, `email`, `sms`), with the
/// password and a current code; the last one cannot go while the policy
/// requires MFA.
#[utoipa::path(delete, path = "/api/v1/me/mfa/methods/{method}", params(("method" = String, Path)),
    request_body = ProofRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong code"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn method_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    method: web::Path<String>,
    body: web::Json<ProofRequest>,
) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    authn::mfa::remove_method(
        &st.svc,
        caller.user()?,
        &method,
        &body.proof(),
        &source(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's second factors.
#[utoipa::path(get, path = "/api/v1/me/mfa", responses((status = 200, body = authn::mfa::MfaSummary)))]
async fn my_mfa(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    Ok(HttpResponse::Ok().json(authn::mfa::summary(
        &st.svc.store.read()?,
        &caller.user()?.id,
    )?))
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into the app.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Start enrolling an authenticator app; active after `/confirm`.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", responses((status = 200, body = TotpEnrollment)))]
async fn totp_start(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    let (secret, otpauth_uri) = authn::mfa::start_totp(&st.svc, caller.user()?)?;
    Ok(HttpResponse::Ok().json(TotpEnrollment {
        secret,
        otpauth_uri,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once.
    pub recovery_codes: Vec<String>,
}

/// Activate the authenticator app with a current code; returns recovery codes once.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
async fn totp_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_totp(&st.svc, caller.user()?, &body.code, &source(&req))?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// New recovery codes; the old set stops working.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", responses((status = 200, body = RecoveryCodes)))]
async fn recovery_regenerate(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    let codes = authn::mfa::regenerate_recovery(&st.svc, caller.user()?, &source(&req))?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Remove all of the caller's second factors (needs the current password and a current code).
#[utoipa::path(delete, path = "/api/v1/me/mfa", request_body = ProofRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong code")))]
async fn mfa_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ProofRequest>,
) -> ApiResult {
    caller.require_recent_auth(&st.svc)?;
    caller.user()?;
    authn::mfa::remove_all_own(&st.svc, &caller.principal, &body.proof(), &source(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End every session, refresh token and access token of a user (an admin,
/// or the user themselves — the calling token ends too).
#[utoipa::path(post, path = "/api/v1/users/{id}/sessions/end", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody)))]
async fn end_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let src = source(&req);
    let uid = UserId::parse(&id)?;
    if caller.principal.user_id() != Some(&uid) {
        access::authorize(
            &st.svc,
            &caller.principal,
            Permission::ManageUsers,
            Resource::Platform,
            &src,
        )?;
    }
    authn::end_user_sessions(&st.svc, &caller.principal, &src, &uid)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The security policy: MFA requirement and sessions.
#[utoipa::path(get, path = "/api/v1/settings/security", responses((status = 200, body = crate::policy::SecurityPolicy)))]
async fn get_security(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageSecurity,
        Resource::Platform,
        &source(&req),
    )?;
    Ok(HttpResponse::Ok().json(crate::policy::current(&st.svc)?))
}

/// Replace the security policy (needs a recent sign-in; audited).
#[utoipa::path(put, path = "/api/v1/settings/security", request_body = crate::policy::SecurityPolicy,
    responses((status = 200, body = crate::policy::SecurityPolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_security(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<crate::policy::SecurityPolicy>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageSecurity,
        Resource::Platform,
        &src,
    )?;
    caller.require_recent_auth(&st.svc)?;
    Ok(HttpResponse::Ok().json(crate::policy::update(
        &st.svc,
        &caller.principal,
        &src,
        body.into_inner(),
    )?))
}

/// Reset a user's second factors (admin); they enroll again.
#[utoipa::path(post, path = "/api/v1/users/{id}/mfa/reset", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody)))]
async fn mfa_reset(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    authn::mfa::reset(&st.svc, &caller.principal, &src, &UserId::parse(&id)?)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Spend a refresh token for a new pair. Reusing a spent token revokes its family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
async fn refresh(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(authn::refresh_tokens(
        &st.svc,
        &body.refresh_token,
        &source(&req),
    )?))
}

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
        }
    }
}

/// The caller (bearer token or session cookie).
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = UserDto), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn me(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
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

fn paging(page: Option<usize>, per_page: Option<usize>) -> Result<(usize, usize), Error> {
    let page = page.unwrap_or(1);
    let per = per_page.unwrap_or(50);
    if page == 0 {
        return Err(Error::invalid("page", "starts at 1"));
    }
    if !(1..=200).contains(&per) {
        return Err(Error::invalid("per_page", "must be between 1 and 200"));
    }
    Ok((page, per))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserDto>,
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
}

impl UserDto {
    /// The DTO with the user's lock state and last sign-in, read through an
    /// open transaction.
    fn with_state(
        mut self,
        r: &impl crate::store::Reader,
        now: crate::clock::Timestamp,
    ) -> Result<Self, Error> {
        let uid = UserId::parse(&self.id)?;
        self.locked_until = authn::lockout::locked_until(r, &uid, now)?.map(rfc3339);
        self.last_login_at = identity::last_sign_in(r, &uid)?.map(rfc3339);
        Ok(self)
    }
}

/// Users, searched and paged.
#[utoipa::path(get, path = "/api/v1/users", params(ListQuery), responses((status = 200, body = UserList)))]
async fn list_users(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<ListQuery>,
) -> ApiResult {
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &source(&req),
    )?;
    let (page, per) = paging(q.page, q.per_page)?;
    // One snapshot for the page and every user's lock state.
    let r = st.svc.store.read()?;
    let now = st.svc.now();
    let (users, total) = identity::list(&r, q.q.as_deref().unwrap_or(""), (page - 1) * per, per)?;
    Ok(HttpResponse::Ok().json(UserList {
        users: users
            .iter()
            .map(|u| UserDto::from(u).with_state(&r, now))
            .collect::<Result<_, _>>()?,
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
async fn create_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateUserRequest>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
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
    let user = identity::create(&st.svc, &caller.principal, &src, new).await?;
    Ok(HttpResponse::Created().json(UserDto::from(&user)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)))]
async fn get_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &source(&req),
    )?;
    let user = identity::get(&st.svc.store.read()?, &UserId::parse(&id)?)?;
    Ok(HttpResponse::Ok()
        .json(UserDto::from(&user).with_state(&st.svc.store.read()?, st.svc.now())?))
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
async fn update_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateUserRequest>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    let b = body.into_inner();
    let up = UserUpdate {
        name: b.name,
        email: b.email.as_deref().map(Email::parse).transpose()?,
        role: b.role.as_deref().map(Role::parse).transpose()?,
        disabled: b.disabled,
    };
    let user = identity::update(&st.svc, &caller.principal, &src, &UserId::parse(&id)?, up)?;
    Ok(HttpResponse::Ok()
        .json(UserDto::from(&user).with_state(&st.svc.store.read()?, st.svc.now())?))
}

async fn set_disabled(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: &str,
    disabled: bool,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    let up = UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    let user = identity::update(&st.svc, &caller.principal, &src, &UserId::parse(id)?, up)?;
    Ok(HttpResponse::Ok()
        .json(UserDto::from(&user).with_state(&st.svc.store.read()?, st.svc.now())?))
}

/// Disable a user: their sessions, refresh and access tokens end at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", params(("id" = String, Path)), responses((status = 200, body = UserDto)))]
async fn disable_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    set_disabled(req, st, caller, &id, true).await
}

/// Enable a disabled user.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", params(("id" = String, Path)), responses((status = 200, body = UserDto)))]
async fn enable_user(
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
async fn delete_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    identity::delete(&st.svc, &caller.principal, &src, &UserId::parse(&id)?)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// Lift a lockout caused by failed sign-ins.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", params(("id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)))]
async fn unlock_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    let uid = UserId::parse(&id)?;
    authn::lockout::unlock(&st.svc, &caller.principal, &src, &uid)?;
    let user = identity::get(&st.svc.store.read()?, &uid)?;
    Ok(HttpResponse::Ok()
        .json(UserDto::from(&user).with_state(&st.svc.store.read()?, st.svc.now())?))
}

/// Set a new password for a user (ends their sessions, refresh and access tokens).
#[utoipa::path(post, path = "/api/v1/users/{id}/password", params(("id" = String, Path)), request_body = PasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody)))]
async fn reset_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<PasswordRequest>,
) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        Resource::Platform,
        &src,
    )?;
    let uid = UserId::parse(&id)?;
    identity::set_password(
        &st.svc,
        &caller.principal,
        &src,
        &uid,
        body.into_inner().password,
        None,
        "user.password_reset",
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Flat on purpose: serde's `flatten` breaks numeric query parameters.
#[derive(Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// A workspace id: its events only (what workspace admins may read).
    pub workspace: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<audit::Event>,
    pub page: usize,
    pub per_page: usize,
    pub more: bool,
}

/// Audit events, newest first, filtered by actor, action, outcome and time.
#[utoipa::path(get, path = "/api/v1/audit", params(audit::Filter, ("page" = Option<usize>, Query), ("per_page" = Option<usize>, Query)),
    responses((status = 200, body = AuditPage)))]
async fn audit_log(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<AuditQuery>,
) -> ApiResult {
    let res = match q.workspace.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => Resource::Workspace(access::parse_id("ws_", w, "workspace")?),
        None => Resource::Platform,
    };
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ReadAudit,
        res,
        &source(&req),
    )?;
    let (page, per) = paging(q.page, q.per_page)?;
    let q = q.into_inner();
    let filter = audit::Filter {
        actor: q.actor,
        action: q.action,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
        workspace: q.workspace,
    };
    // Refusals wait for their group commit; whoever reads the log sees them.
    access::flush_denials(&st.svc)?;
    let (events, more) = audit::query(&st.svc.store.read()?, &filter, (page - 1) * per, per)?;
    Ok(HttpResponse::Ok().json(AuditPage {
        events,
        page,
        per_page: per,
        more,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct KeyDto {
    pub version: u32,
    pub active: bool,
    pub created_at: String,
    /// Records still sealed under this version.
    pub records: u64,
}

impl From<&KeyVersionStatus> for KeyDto {
    fn from(k: &KeyVersionStatus) -> Self {
        KeyDto {
            version: k.version,
            active: k.active,
            created_at: rfc3339(k.created_at),
            records: k.records,
        }
    }
}

/// Data-key versions and the records each still seals.
#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = [KeyDto])))]
async fn key_status(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageKeys,
        Resource::Platform,
        &source(&req),
    )?;
    let list: Vec<KeyDto> = keys::status(&st.svc)?.iter().map(KeyDto::from).collect();
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize, ToSchema)]
pub struct RotateResponse {
    pub new_version: u32,
    /// Re-sealing runs in the background; watch `GET /api/v1/keys`.
    pub resealing: bool,
}

/// Make a new data key active; existing records are re-sealed in the background.
#[utoipa::path(post, path = "/api/v1/keys/rotate", responses((status = 202, body = RotateResponse)))]
async fn rotate_keys(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageKeys,
        Resource::Platform,
        &src,
    )?;
    caller.require_recent_auth(&st.svc)?;
    let v = start_rotation(&st, caller.principal.clone(), src)?;
    Ok(HttpResponse::Accepted().json(RotateResponse {
        new_version: v,
        resealing: true,
    }))
}

/// Rotates now and re-seals on the blocking pool (shared with the console).
pub fn start_rotation(
    st: &AppState,
    by: access::Principal,
    src: audit::Source,
) -> Result<u32, Error> {
    let v = keys::begin_rotation(&st.svc, &by, &src)?;
    let svc = st.svc.clone();
    actix_web::rt::task::spawn_blocking(move || {
        if let Err(e) = keys::finish_rotation(&svc, &by, &src, v, &mut |_, _| {}) {
            tracing::error!(error = %e, "re-sealing after rotation failed; run `gatehouse keys rotate` again");
        }
    });
    Ok(v)
}
