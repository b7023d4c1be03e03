//! console-api: a business's own staff work the inbox over `/v1/…` (JSON in and out), behind API
//! Gateway's JWT authorizer (Cognito). The function still checks the claims it relies on
//! ([`inbox_shared::identity::caller_from_claims`]): tenant and role come from the token, never from the
//! request, and every table key is built from the caller's tenant, so an id of another tenant is simply
//! not found (404, never revealed to exist).
//!
//! - The routes are one table, [`ROUTES`] (method, path pattern, operation, least role), used both to
//!   dispatch and to check the OpenAPI document ([`openapi::document`], served at `/v1/openapi.json`).
//! - Errors are RFC 9457 `application/problem+json` ([`error::ApiError`]).
//! - Page cursors are signed and bound to the tenant and listing ([`cursor::Cursors`]).
//! - An `agent` works conversations and drafts; the `owner` also has knowledge (with a JSON or CSV
//!   import, checked by [`inbox_shared::service::knowledge`]), settings, channels (list, disconnect,
//!   connect link), usage, the audit trail, and a contact's export or erasure.
//! - Public ids: a conversation is `{channel_id}.{conversation_id}` (its table key needs both, so one
//!   GetItem finds it); a draft is `{conversation_id}.{draft_id}`.
//! - Every change is audited with the acting user (`console:{sub}`) by the domain service it calls; no
//!   message text, token or cursor reaches a log line (a request is logged as route, status, tenant, user).
//! - CORS: only `CONSOLE_ALLOWED_ORIGIN` gets `Access-Control-Allow-Origin`; preflights are answered
//!   without a token.

// The OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

pub mod cursor;
pub mod error;
pub mod openapi;

use std::collections::HashMap;
use std::str::FromStr;

use inbox_shared::aws::AwsClients;
use inbox_shared::clock::{self, SharedClock};
use inbox_shared::config::{Config, ConfigError};
use inbox_shared::http_response::json;
use inbox_shared::identity::{Caller, Role, caller_from_claims};
use inbox_shared::ids::{ChannelId, ConversationId, new_id};
use inbox_shared::model::{
    AuditEvent, Channel, Conversation, ConversationMode, Draft, KnowledgeEntry, Message, Platform,
    Tenant, TenantStatus,
};
use inbox_shared::platform::send::{Sender, max_chars};
use inbox_shared::runner::{Function, HttpFunction};
use inbox_shared::secret::{MessageText, PlatformUserId};
use inbox_shared::service::analytics;
use inbox_shared::service::erasure::Eraser;
use inbox_shared::service::knowledge::{self, EntryText, ImportRow};
use inbox_shared::service::onboarding::{ConnectError, Onboarding};
use inbox_shared::service::outbound::{
    AgentReply, AgentSend, Delivered, Outbox, agent_send, window_closes_at,
};
use inbox_shared::service::tenants::{self, SettingsChange};
use inbox_shared::service::{ServiceError, conversations};
use inbox_shared::store::{PageRequest, Store};
use inbox_shared::telemetry::Metrics;
use inbox_shared::vault::TokenVault;
use lambda_http::http::{HeaderMap, HeaderValue, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cursor::Cursors;
use crate::error::{ApiError, ApiResult};

pub const FUNCTION: &str = "console-api";
/// The largest request body taken (a reply or an edited draft is a few KB).
pub const MAX_BODY: usize = 64 * 1024;
/// The largest knowledge import taken (JSON or CSV).
pub const MAX_IMPORT_BODY: usize = 1024 * 1024;
const DEFAULT_LIMIT: usize = 25;
/// The analytics period when the request names no start: the last 30 days.
const DEFAULT_ANALYTICS_DAYS: i64 = 30;
const MAX_LIMIT: usize = 100;
/// The longest `Idempotency-Key` taken.
const MAX_IDEMPOTENCY_KEY: usize = 128;
/// The longest draft edit (LINE's, the longest platform limit; the sender cuts to the draft's own).
const MAX_DRAFT_TEXT: usize = 5000;
/// The longest platform user id taken from a path (LINE's are 33 characters, Meta's ids fewer).
const MAX_USER_ID: usize = 128;
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key";

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    OpenApi,
    ListConversations,
    GetConversation,
    ListMessages,
    Reply,
    Handoff,
    Release,
    ListDrafts,
    ApproveDraft,
    RejectDraft,
    ListKnowledge,
    AddKnowledge,
    GetKnowledge,
    UpdateKnowledge,
    DeleteKnowledge,
    ImportKnowledge,
    GetSettings,
    UpdateSettings,
    ListChannels,
    DisconnectChannel,
    ConnectLink,
    Usage,
    Analytics,
    Audit,
    ExportContact,
    EraseContact,
}

/// One route: method, path pattern (`{name}` matches one segment), operation, least role.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub pattern: &'static str,
    pub op: Op,
    /// `None`: no token needed (the OpenAPI document).
    pub role: Option<Role>,
}

const fn route(method: &'static str, pattern: &'static str, op: Op, role: Option<Role>) -> Route {
    Route {
        method,
        pattern,
        op,
        role,
    }
}

const AGENT: Option<Role> = Some(Role::Agent);
const OWNER: Option<Role> = Some(Role::Owner);

/// Every route of the API. An `agent` reads conversations, replies, hands off and releases, and decides
/// drafts; everything else (knowledge, settings, channels, usage, audit, contacts) is `owner` only.
pub const ROUTES: &[Route] = &[
    route("GET", "/v1/openapi.json", Op::OpenApi, None),
    route("GET", "/v1/conversations", Op::ListConversations, AGENT),
    route("GET", "/v1/conversations/{id}", Op::GetConversation, AGENT),
    route(
        "GET",
        "/v1/conversations/{id}/messages",
        Op::ListMessages,
        AGENT,
    ),
    route("POST", "/v1/conversations/{id}/messages", Op::Reply, AGENT),
    route("POST", "/v1/conversations/{id}/handoff", Op::Handoff, AGENT),
    route("POST", "/v1/conversations/{id}/release", Op::Release, AGENT),
    route("GET", "/v1/drafts", Op::ListDrafts, AGENT),
    route("POST", "/v1/drafts/{id}/approve", Op::ApproveDraft, AGENT),
    route("POST", "/v1/drafts/{id}/reject", Op::RejectDraft, AGENT),
    route("GET", "/v1/knowledge", Op::ListKnowledge, OWNER),
    route("POST", "/v1/knowledge", Op::AddKnowledge, OWNER),
    route("POST", "/v1/knowledge/import", Op::ImportKnowledge, OWNER),
    route("GET", "/v1/knowledge/{id}", Op::GetKnowledge, OWNER),
    route("PUT", "/v1/knowledge/{id}", Op::UpdateKnowledge, OWNER),
    route("DELETE", "/v1/knowledge/{id}", Op::DeleteKnowledge, OWNER),
    route("GET", "/v1/settings", Op::GetSettings, OWNER),
    route("PATCH", "/v1/settings", Op::UpdateSettings, OWNER),
    route("GET", "/v1/channels", Op::ListChannels, OWNER),
    route("GET", "/v1/usage", Op::Usage, OWNER),
    route("GET", "/v1/analytics", Op::Analytics, OWNER),
    route("GET", "/v1/audit", Op::Audit, OWNER),
    route(
        "POST",
        "/v1/contacts/{platform}/{user_id}/export",
        Op::ExportContact,
        OWNER,
    ),
    route(
        "POST",
        "/v1/contacts/{platform}/{user_id}/erase",
        Op::EraseContact,
        OWNER,
    ),
    route("POST", "/v1/channels/connect-link", Op::ConnectLink, OWNER),
    route(
        "POST",
        "/v1/channels/{id}/disconnect",
        Op::DisconnectChannel,
        OWNER,
    ),
];

/// The path parameters of `path` if it matches `pattern`.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut pattern_parts = pattern.split('/');
    let mut path_parts = path.split('/');
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) if p.starts_with('{') => {
                if s.is_empty() {
                    return None;
                }
                params.push(percent_decode(s)?);
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A conversation's public id: `{channel_id}.{conversation_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRef {
    pub channel_id: ChannelId,
    pub conversation_id: ConversationId,
}

impl ConversationRef {
    pub fn of(conversation: &Conversation) -> String {
        format!(
            "{}.{}",
            conversation.channel_id, conversation.conversation_id
        )
    }

    /// Any text that is not one of our ids is simply not found.
    fn parse(text: &str) -> ApiResult<Self> {
        let not_found = || ApiError::not_found("conversation", &shown(text));
        let (channel, conversation) = text.split_once('.').ok_or_else(not_found)?;
        Ok(Self {
            channel_id: ChannelId::from_str(channel).map_err(|_| not_found())?,
            conversation_id: ConversationId::from_str(conversation).map_err(|_| not_found())?,
        })
    }
}

/// A draft's public id: `{conversation_id}.{draft_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRef {
    pub conversation_id: ConversationId,
    pub draft_id: String,
}

impl DraftRef {
    pub fn of(draft: &Draft) -> String {
        format!("{}.{}", draft.conversation_id, draft.draft_id)
    }

    fn parse(text: &str) -> ApiResult<Self> {
        let not_found = || ApiError::not_found("draft", &shown(text));
        let (conversation, draft) = text.split_once('.').ok_or_else(not_found)?;
        // A draft id has the characters of our ids (checked as one, as it becomes part of a key).
        ConversationId::from_str(draft).map_err(|_| not_found())?;
        Ok(Self {
            conversation_id: ConversationId::from_str(conversation).map_err(|_| not_found())?,
            draft_id: draft.to_owned(),
        })
    }
}

/// An id from a path, as a problem's detail may show it: short, and only the characters of our ids.
/// The 404 of a conversation id the caller's business does not have (another's included).
fn conversation_not_found(id: &str) -> ApiError {
    ApiError::not_found("conversation", &shown(id))
}

/// The caller's business, if it may still use the console.
fn active(tenant: Option<Tenant>) -> ApiResult<Tenant> {
    match tenant {
        Some(tenant) if tenant.status == TenantStatus::Active => Ok(tenant),
        _ => Err(ApiError::forbidden(
            "the business of this user is not active",
        )),
    }
}

fn shown(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

pub struct ConsoleApi {
    store: Store,
    onboarding: Onboarding,
    outbox: Outbox,
    cursors: Cursors,
    allowed_origin: Option<String>,
    metrics: Metrics,
}

/// One request, as a handler sees it.
struct Call<'a> {
    caller: &'a Caller,
    params: &'a [String],
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl ConsoleApi {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Self::new(&config, &AwsClients::from_env().await, clock::system())
    }

    pub fn new(
        config: &Config,
        clients: &AwsClients,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let cursors = Cursors::new(config.require_console_cursor_secret()?);
        let store = Store::new(clients.dynamodb.clone(), &config.table_name, clock);
        let vault = TokenVault::new(clients.kms.clone(), &config.kms_key_id);
        let http = inbox_shared::https::client(std::time::Duration::from_secs(10));
        let onboarding = Onboarding::new(
            config,
            store.clone(),
            TokenVault::new(clients.kms.clone(), &config.kms_key_id),
            http.clone(),
            "console",
        );
        Ok(Self {
            onboarding,
            outbox: Outbox::new(store.clone(), vault, Sender::new(config, http)),
            store,
            cursors,
            allowed_origin: config.console_allowed_origin.clone(),
            metrics: Metrics::new(FUNCTION),
        })
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let origin = request
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let allowed = origin
            .as_deref()
            .is_some_and(|o| self.allowed_origin.as_deref() == Some(o));
        let mut response = self.answer(request, allowed).await;
        if allowed && let Some(origin) = origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
            response
                .headers_mut()
                .insert("access-control-allow-origin", origin);
        }
        response
            .headers_mut()
            .insert("vary", HeaderValue::from_static("origin"));
        response
    }

    async fn answer(&self, request: Request, origin_allowed: bool) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let candidates: Vec<(&Route, Vec<String>)> = ROUTES
            .iter()
            .filter_map(|r| matches(r.pattern, &path).map(|p| (r, p)))
            .collect();
        if candidates.is_empty() {
            return ApiError::no_route(&shown(&path)).response();
        }
        let allow = candidates
            .iter()
            .map(|(r, _)| r.method)
            .collect::<Vec<_>>()
            .join(", ");
        if method == Method::OPTIONS {
            return preflight(&allow, origin_allowed);
        }
        let Some((route, params)) = candidates
            .into_iter()
            .find(|(r, _)| r.method == method.as_str())
        else {
            let mut response = ApiError::method_not_allowed(&allow).response();
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert("allow", value);
            }
            return response;
        };
        let started = std::time::Instant::now();
        let (caller, result) = self.authorised(route, params, request).await;
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                if err.status >= 500 {
                    self.metrics.count("ServerError", 1);
                }
                err.response()
            }
        };
        tracing::info!(
            route = route.pattern,
            method = route.method,
            status = response.status().as_u16(),
            tenant = caller.as_ref().map(|c| c.tenant_id.as_str()),
            user = caller.as_ref().map(|c| c.user_id.as_str()),
            ms = started.elapsed().as_millis() as u64,
            "console request"
        );
        response
    }

    /// The caller checked against the route, then the route run.
    async fn authorised(
        &self,
        route: &Route,
        params: Vec<String>,
        request: Request,
    ) -> (Option<Caller>, ApiResult<Response<Body>>) {
        let Some(least) = route.role else {
            return (None, Ok(json(200, openapi::document())));
        };
        let caller = match caller_of(&request) {
            Ok(caller) => caller,
            Err(err) => return (None, Err(err)),
        };
        if caller.role < least {
            let err = ApiError::forbidden(format!(
                "{} {} needs the {} role",
                route.method,
                route.pattern,
                least.as_str()
            ));
            return (Some(caller), Err(err));
        }
        let query: HashMap<String, String> =
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let (parts, body) = request.into_parts();
        let body: &[u8] = match &body {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        let limit = if route.op == Op::ImportKnowledge {
            MAX_IMPORT_BODY
        } else {
            MAX_BODY
        };
        if body.len() > limit {
            return (Some(caller), Err(ApiError::too_large(limit)));
        }
        let call = Call {
            caller: &caller,
            params: &params,
            query: &query,
            headers: &parts.headers,
            body,
        };
        let result = self.run(route.op, &call).await;
        (Some(caller), result)
    }

    async fn run(&self, op: Op, call: &Call<'_>) -> ApiResult<Response<Body>> {
        match op {
            Op::OpenApi => Ok(json(200, openapi::document())),
            Op::ListConversations => self.list_conversations(call).await,
            Op::GetConversation => {
                let conversation = self.conversation(call).await?;
                Ok(json(
                    200,
                    conversation_view(&conversation, self.store.now()),
                ))
            }
            Op::ListMessages => self.list_messages(call).await,
            Op::Reply => self.reply(call).await,
            Op::Handoff | Op::Release => self.set_mode(op, call).await,
            Op::ListDrafts => self.list_drafts(call).await,
            Op::ApproveDraft => self.approve(call).await,
            Op::RejectDraft => self.reject(call).await,
            Op::ListKnowledge => {
                let entries = self
                    .store
                    .knowledge_of_tenant(&call.caller.tenant_id)
                    .await?;
                Ok(json(
                    200,
                    json!({ "items": entries.iter().map(knowledge_view).collect::<Vec<_>>() }),
                ))
            }
            Op::GetKnowledge => Ok(json(
                200,
                knowledge_view(&self.knowledge_entry(call).await?),
            )),
            Op::AddKnowledge => {
                let text = entry_text(call.body)?;
                let tenant = self.tenant(call.caller).await?;
                let entry =
                    knowledge::add(&self.store, &call.caller.actor(), &tenant, text).await?;
                Ok(json(201, knowledge_view(&entry)))
            }
            Op::UpdateKnowledge => {
                let id = self.knowledge_entry(call).await?.entry_id;
                let text = entry_text(call.body)?;
                let tenant = self.tenant(call.caller).await?;
                let entry =
                    knowledge::update(&self.store, &call.caller.actor(), &tenant, &id, text)
                        .await?;
                Ok(json(200, knowledge_view(&entry)))
            }
            Op::DeleteKnowledge => {
                let id = self.knowledge_entry(call).await?.entry_id;
                let tenant = self.tenant(call.caller).await?;
                knowledge::remove(&self.store, &call.caller.actor(), &tenant, &id).await?;
                Ok(Response::builder()
                    .status(204)
                    .header("cache-control", "no-store")
                    .body(Body::Empty)
                    .expect("static headers"))
            }
            Op::GetSettings => Ok(json(200, settings_view(&self.tenant(call.caller).await?))),
            Op::UpdateSettings => {
                let change = settings_change(call.body)?;
                self.tenant(call.caller).await?;
                let tenant = tenants::update_settings(
                    &self.store,
                    &call.caller.actor(),
                    &call.caller.tenant_id,
                    change,
                )
                .await
                .map_err(settings_error)?;
                Ok(json(200, settings_view(&tenant)))
            }
            Op::ListChannels => {
                let channels = self
                    .store
                    .channels_of_tenant(&call.caller.tenant_id)
                    .await?;
                Ok(json(
                    200,
                    json!({ "items": channels.iter().map(channel_view).collect::<Vec<_>>() }),
                ))
            }
            Op::DisconnectChannel => self.disconnect(call).await,
            Op::Usage => self.usage(call).await,
            Op::Analytics => self.analytics(call).await,
            Op::ExportContact | Op::EraseContact => self.contact(op, call).await,
            Op::Audit => self.audit(call).await,
            Op::ConnectLink => self.connect_link(call).await,
            Op::ImportKnowledge => {
                let rows = import_rows(call.headers, call.body)?;
                let tenant = self.tenant(call.caller).await?;
                let report =
                    knowledge::import(&self.store, &call.caller.actor(), &tenant, &rows).await?;
                Ok(json(200, json!(report)))
            }
        }
    }

    // --- contacts --------------------------------------------------------------------------------

    /// An end user's access (export) or erasure request, for one platform user id of this business.
    async fn contact(&self, op: Op, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let platform = Platform::from_str(&call.params[0]).map_err(|_| {
            ApiError::invalid(
                "platform",
                "platform must be messenger, instagram, whatsapp or line",
            )
        })?;
        // The router has percent-decoded the segment.
        let user = &call.params[1];
        if user.trim().is_empty()
            || user.chars().count() > MAX_USER_ID
            || user.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "user_id",
                format!("a platform user id has 1 to {MAX_USER_ID} printable characters"),
            ));
        }
        json_body(call.body, false, &[])?;
        let tenant = self.tenant(call.caller).await?;
        let user_id = PlatformUserId::new(user.clone());
        let eraser = Eraser::new(self.store.clone(), call.caller.actor());
        let found = !eraser
            .conversations_of_contact(&tenant.tenant_id, platform, &user_id)
            .await?
            .is_empty()
            || self
                .store
                .get_contact(&tenant.tenant_id, platform, &user_id)
                .await?
                .is_some();
        if !found {
            // The id itself is personal data: not repeated.
            return Err(ApiError::not_found(
                "contact",
                &format!("with that user id on {platform}"),
            ));
        }
        if op == Op::EraseContact {
            let counts = eraser.erase_contact(&tenant, platform, &user_id).await?;
            Ok(json(200, json!({ "deleted": counts })))
        } else {
            let export = eraser.export_contact(&tenant, platform, &user_id).await?;
            Ok(json(200, json!(export)))
        }
    }

    // --- usage and audit -------------------------------------------------------------------------

    async fn usage(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let month = match call.query.get("month") {
            None => inbox_shared::model::month_of(self.store.now()),
            Some(month) if is_month(month) => month.clone(),
            Some(_) => {
                return Err(ApiError::invalid(
                    "month",
                    "month must be YYYY-MM (01 to 12)",
                ));
            }
        };
        let rows = self
            .store
            .usage_of_month(&call.caller.tenant_id, &month)
            .await?;
        let mut totals = serde_json::Map::new();
        let mut channels = Vec::new();
        for row in &rows {
            let Value::Object(mut counts) = json!(row) else {
                continue;
            };
            for name in ["tenant_id", "month"] {
                counts.remove(name);
            }
            for (name, value) in &counts {
                if let Some(n) = value.as_u64() {
                    let total = totals.entry(name.clone()).or_insert(json!(0));
                    *total = json!(total.as_u64().unwrap_or(0) + n);
                }
            }
            channels.push(Value::Object(counts));
        }
        Ok(json(
            200,
            json!({"month": month, "totals": totals, "channels": channels}),
        ))
    }

    /// The figures of `from`..`to` (UTC days, both included; the last 30 days up to today by default).
    async fn analytics(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let day = |name: &'static str| {
            call.query
                .get(name)
                .map(|text| {
                    analytics::Period::parse_day(text)
                        .map_err(|e| ApiError::invalid(name, e.to_string()))
                })
                .transpose()
        };
        let today = self.store.now().date();
        let period = match (day("from")?, day("to")?) {
            (None, to) => analytics::Period::ending(to.unwrap_or(today), DEFAULT_ANALYTICS_DAYS),
            (Some(from), to) => analytics::Period::new(from, to.unwrap_or(today))
                .map_err(|e| ApiError::invalid("from", e.to_string()))?,
        };
        let report = analytics::report(&self.store, &call.caller.tenant_id, period).await?;
        Ok(json(200, json!(report)))
    }

    async fn audit(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let tenant_id = &call.caller.tenant_id;
        let limit = limit_of(call.query)?;
        let after = self.cursor_of(call, "audit")?;
        let page = self
            .store
            .query::<AuditEvent>(
                &inbox_shared::keys::audit_events(Some(tenant_id)),
                PageRequest {
                    limit: Some(limit as i32),
                    backwards: true,
                    after,
                },
            )
            .await?;
        Ok(json(
            200,
            json!({
                "items": page.items.iter().map(|e| json!({
                    "id": e.event_id,
                    "at": rfc3339(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "counts": e.counts,
                })).collect::<Vec<_>>(),
                "next_cursor": page.next.map(|p| self.cursors.seal(tenant_id, "audit", &p)),
            }),
        ))
    }

    // --- channels --------------------------------------------------------------------------------

    async fn disconnect(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let id = &call.params[0];
        let not_found = || ApiError::not_found("channel", &shown(id));
        let channel_id = ChannelId::from_str(id).map_err(|_| not_found())?;
        self.store
            .get_channel(&call.caller.tenant_id, &channel_id)
            .await?
            .ok_or_else(not_found)?;
        json_body(call.body, false, &[])?;
        let tenant = self.tenant(call.caller).await?;
        self.onboarding
            .disconnect_as(&call.caller.actor(), &tenant, &channel_id)
            .await
            .map_err(connect_error)?;
        let channel = self
            .store
            .get_channel(&tenant.tenant_id, &channel_id)
            .await?
            .ok_or_else(not_found)?;
        Ok(json(200, channel_view(&channel)))
    }

    async fn connect_link(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let body = json_body(call.body, true, &["platform", "via_facebook"])?;
        let platform = match body.get("platform") {
            Some(Value::String(p)) => Platform::from_str(p)
                .ok()
                .filter(|p| *p != Platform::Line)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "platform",
                        "platform must be messenger, instagram or whatsapp (LINE is connected with its channel secret)",
                    )
                })?,
            _ => return Err(ApiError::invalid("platform", "platform is required")),
        };
        let via_facebook = match body.get("via_facebook") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::invalid(
                    "via_facebook",
                    "via_facebook must be true or false",
                ));
            }
        };
        let tenant = self.tenant(call.caller).await?;
        let link = self
            .onboarding
            .connect_link_as(&call.caller.actor(), &tenant, &[platform], via_facebook)
            .await
            .map_err(connect_error)?;
        Ok(json(
            201,
            json!({"url": link.url, "expires_at": rfc3339(link.expires_at)}),
        ))
    }

    // --- knowledge -------------------------------------------------------------------------------

    /// The entry the path names, in the caller's business.
    async fn knowledge_entry(&self, call: &Call<'_>) -> ApiResult<KnowledgeEntry> {
        let id = &call.params[0];
        let not_found = || ApiError::not_found("knowledge entry", &shown(id));
        if !knowledge::is_entry_id(id) {
            return Err(not_found());
        }
        self.store
            .get_knowledge(&call.caller.tenant_id, id)
            .await?
            .ok_or_else(not_found)
    }

    // --- conversations ---------------------------------------------------------------------------

    async fn list_conversations(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let tenant_id = &call.caller.tenant_id;
        let limit = limit_of(call.query)?;
        let mode: Option<ConversationMode> = enum_param(call.query, "mode")?;
        let platform: Option<Platform> = enum_param(call.query, "platform")?;
        let after = self.cursor_of(call, "conversations")?;
        let page = self
            .store
            .conversations_by_activity(tenant_id, limit, after, |c| {
                mode.is_none_or(|m| c.mode == m) && platform.is_none_or(|p| c.platform == p)
            })
            .await?;
        let now = self.store.now();
        Ok(json(
            200,
            json!({
                "items": page.items.iter().map(|c| conversation_view(c, now)).collect::<Vec<_>>(),
                "next_cursor": page.next.map(|p| self.cursors.seal(tenant_id, "conversations", &p)),
            }),
        ))
    }

    /// The conversation of the path's `{id}`, in the caller's tenant.
    async fn conversation(&self, call: &Call<'_>) -> ApiResult<Conversation> {
        let id = &call.params[0];
        let reference = ConversationRef::parse(id)?;
        self.store
            .get_conversation(
                &call.caller.tenant_id,
                &reference.channel_id,
                &reference.conversation_id,
            )
            .await?
            .ok_or_else(|| conversation_not_found(id))
    }

    async fn list_messages(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let conversation = self.conversation(call).await?;
        let tenant_id = &call.caller.tenant_id;
        let limit = limit_of(call.query)?;
        let listing = format!("messages:{}", conversation.conversation_id);
        let after = self.cursor_of(call, &listing)?;
        let page = self
            .store
            .query::<Message>(
                &inbox_shared::keys::messages_of_conversation(
                    tenant_id,
                    &conversation.conversation_id,
                ),
                PageRequest {
                    limit: Some(limit as i32),
                    backwards: false,
                    after,
                },
            )
            .await?;
        Ok(json(
            200,
            json!({
                "items": page.items.iter().map(message_view).collect::<Vec<_>>(),
                "next_cursor": page.next.map(|p| self.cursors.seal(tenant_id, &listing, &p)),
            }),
        ))
    }

    async fn tenant(&self, caller: &Caller) -> ApiResult<Tenant> {
        active(self.store.get_tenant(&caller.tenant_id).await?)
    }

    async fn reply(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let id = &call.params[0];
        let reference = ConversationRef::parse(id)?;
        // The conversation with what sending needs, in one read.
        let context = self
            .store
            .conversation_in_context(
                &call.caller.tenant_id,
                &reference.channel_id,
                &reference.conversation_id,
            )
            .await?;
        let conversation = context
            .conversation
            .ok_or_else(|| conversation_not_found(id))?;
        let body: HashMap<String, Value> = json_body(call.body, true, &["text"])?;
        let idempotency_key = idempotency_key(call.headers)?;
        let text = text_field(
            &body,
            max_chars(conversation.platform),
            conversation.platform,
        )?
        .ok_or_else(|| ApiError::invalid("text", "the reply's text is required"))?;
        let tenant = active(context.tenant)?;
        let channel = context.channel.ok_or_else(|| {
            ApiError::conflict(
                "The channel cannot send",
                "the conversation's channel was disconnected",
            )
        })?;
        let delivered = self
            .outbox
            .reply_as_agent(
                &call.caller.actor(),
                &AgentReply {
                    tenant: &tenant,
                    channel: &channel,
                    conversation: &conversation,
                    text: &text,
                    idempotency_key: &idempotency_key,
                },
            )
            .await?;
        self.metrics.count("AgentReplies", 1);
        Ok(delivered_view(delivered, 201))
    }

    async fn set_mode(&self, op: Op, call: &Call<'_>) -> ApiResult<Response<Body>> {
        // The id first: another business's id is a 404 whatever the body.
        let mut conversation = self.conversation(call).await?;
        json_body(call.body, false, &[])?;
        let tenant = self.tenant(call.caller).await?;
        let actor = call.caller.actor();
        let (channel, id) = (&conversation.channel_id, &conversation.conversation_id);
        if op == Op::Handoff {
            conversations::hand_off(&self.store, &actor, &tenant, channel, id).await?;
            conversation.mode = ConversationMode::Human;
            conversation.handoff_reason = Some(conversations::CONSOLE_HANDOFF_REASON.into());
        } else {
            conversations::release(&self.store, &actor, &tenant, channel, id).await?;
            conversation.mode = ConversationMode::Bot;
            conversation.handoff_reason = None;
        }
        Ok(json(
            200,
            conversation_view(&conversation, self.store.now()),
        ))
    }

    // --- drafts ----------------------------------------------------------------------------------

    async fn list_drafts(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let drafts = self.store.pending_drafts(&call.caller.tenant_id).await?;
        Ok(json(
            200,
            json!({ "items": drafts.iter().map(draft_view).collect::<Vec<_>>() }),
        ))
    }

    async fn draft(&self, call: &Call<'_>) -> ApiResult<(DraftRef, Draft)> {
        let id = &call.params[0];
        let reference = DraftRef::parse(id)?;
        let draft = self
            .store
            .get_draft(
                &call.caller.tenant_id,
                &reference.conversation_id,
                &reference.draft_id,
            )
            .await?
            .ok_or_else(|| ApiError::not_found("draft", &shown(id)))?;
        Ok((reference, draft))
    }

    async fn approve(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        // Found first: an id of another business is a 404 before anything else is checked.
        let (reference, _) = self.draft(call).await?;
        let body: HashMap<String, Value> = json_body(call.body, false, &["text"])?;
        let edit = text_field(&body, MAX_DRAFT_TEXT, Platform::Line)?;
        let tenant = self.tenant(call.caller).await?;
        let delivered = self
            .outbox
            .approve_draft_edited(
                &call.caller.actor(),
                &tenant,
                &reference.conversation_id,
                &reference.draft_id,
                edit.as_ref(),
            )
            .await?;
        self.metrics.count("DraftsApproved", 1);
        Ok(delivered_view(delivered, 200))
    }

    async fn reject(&self, call: &Call<'_>) -> ApiResult<Response<Body>> {
        let (reference, draft) = self.draft(call).await?;
        json_body(call.body, false, &[])?;
        if draft.status != inbox_shared::model::DraftStatus::Pending {
            return Err(ApiError::conflict(
                "The draft was already decided",
                format!("draft {} is {}", DraftRef::of(&draft), draft.status),
            ));
        }
        let tenant = self.tenant(call.caller).await?;
        self.outbox
            .reject_draft(
                &call.caller.actor(),
                &tenant,
                &reference.conversation_id,
                &reference.draft_id,
            )
            .await?;
        Ok(json(
            200,
            json!({"id": DraftRef::of(&draft), "status": "rejected"}),
        ))
    }

    /// The position of the `cursor` parameter, if any: it must be one given to this tenant for this
    /// listing.
    fn cursor_of(
        &self,
        call: &Call<'_>,
        listing: &str,
    ) -> ApiResult<Option<inbox_shared::store::Cursor>> {
        match call.query.get("cursor").filter(|c| !c.is_empty()) {
            None => Ok(None),
            Some(cursor) => self
                .cursors
                .open(&call.caller.tenant_id, listing, cursor)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid("cursor", "the cursor is not one this listing gave you")
                }),
        }
    }
}

/// The caller from the JWT authorizer's claims in the request context.
fn caller_of(request: &Request) -> ApiResult<Caller> {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let claims = claims.ok_or_else(|| {
        ApiError::unauthenticated("no verified token: send Authorization: Bearer <token>")
    })?;
    Ok(caller_from_claims(claims)?)
}

fn preflight(allow: &str, origin_allowed: bool) -> Response<Body> {
    let mut builder = Response::builder().status(204);
    if origin_allowed {
        builder = builder
            .header("access-control-allow-methods", allow)
            .header("access-control-allow-headers", ALLOWED_HEADERS)
            .header("access-control-max-age", "600");
    }
    builder
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .expect("static headers")
}

fn limit_of(query: &HashMap<String, String>) -> ApiResult<usize> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

fn enum_param<T: FromStr>(
    query: &HashMap<String, String>,
    name: &'static str,
) -> ApiResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    query
        .get(name)
        .map(|value| T::from_str(value).map_err(|err| ApiError::invalid(name, err.to_string())))
        .transpose()
}

/// The body as a JSON object with only `allowed` fields (`required`: a body must be there).
fn json_body(
    body: &[u8],
    required: bool,
    allowed: &[&'static str],
) -> ApiResult<HashMap<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::invalid("body", "a JSON object is required"))
        } else {
            Ok(HashMap::new())
        };
    }
    let object: HashMap<String, Value> = serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid("body", "the body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        let shown_name = shown(unknown);
        return Err(ApiError::invalid(
            "body",
            format!("unknown field {shown_name:?}: allowed are {allowed:?}"),
        ));
    }
    Ok(object)
}

/// The optional `text` field: a string, not blank, at most `limit` characters.
fn text_field(
    body: &HashMap<String, Value>,
    limit: usize,
    platform: Platform,
) -> ApiResult<Option<MessageText>> {
    match body.get("text") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(ApiError::invalid("text", "the text is empty"))
        }
        Some(Value::String(text)) if text.chars().count() > limit => Err(ApiError::invalid(
            "text",
            format!("the text is longer than the {limit} characters {platform} takes"),
        )),
        Some(Value::String(text)) => Ok(Some(MessageText::new(text.clone()))),
        Some(_) => Err(ApiError::invalid("text", "the text must be a string")),
    }
}

/// The `Idempotency-Key` header, or a fresh key (then every request is its own send).
fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(new_id("req"));
    };
    let invalid = || {
        ApiError::invalid(
            "Idempotency-Key",
            format!(
                "1 to {MAX_IDEMPOTENCY_KEY} characters of letters, digits, '-', '_', '.' and ':'"
            ),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The reply window of a conversation as the console shows it.
fn window_view(conversation: &Conversation, now: OffsetDateTime) -> Value {
    let closes_at = window_closes_at(conversation.platform, conversation);
    let state = match agent_send(conversation, now) {
        Ok(AgentSend::Standard) if closes_at.is_none() => "always",
        Ok(AgentSend::Standard) => "open",
        Ok(AgentSend::HumanAgentTag) => "human_agent_only",
        Err(_) => "closed",
    };
    json!({
        "state": state,
        "standard_closes_at": closes_at.map(rfc3339),
    })
}

pub fn conversation_view(conversation: &Conversation, now: OffsetDateTime) -> Value {
    json!({
        "id": ConversationRef::of(conversation),
        "channel_id": conversation.channel_id,
        "platform": conversation.platform.as_str(),
        "user_id": conversation.user_id.expose(),
        "mode": conversation.mode.as_str(),
        "handoff_reason": conversation.handoff_reason,
        "last_inbound_at": conversation.last_inbound_at.map(rfc3339),
        "last_outbound_at": conversation.last_outbound_at.map(rfc3339),
        "last_activity_at": rfc3339(conversation.last_activity_at()),
        "created_at": rfc3339(conversation.created_at),
        "reply_window": window_view(conversation, now),
    })
}

fn message_view(message: &Message) -> Value {
    json!({
        "id": message.message_id,
        "direction": message.direction.as_str(),
        "author": message.author.as_str(),
        "text": message.text.as_ref().map(|t| t.expose()),
        "attachments": message.attachments,
        "status": message.status.as_str(),
        "sent_at": rfc3339(message.sent_at),
    })
}

fn draft_view(draft: &Draft) -> Value {
    json!({
        "id": DraftRef::of(draft),
        "conversation_id": format!("{}.{}", draft.channel_id, draft.conversation_id),
        "in_reply_to": draft.in_reply_to,
        "text": draft.text.expose(),
        "status": draft.status.as_str(),
        "created_at": rfc3339(draft.created_at),
    })
}

/// The fields `PATCH /v1/settings` takes.
pub fn settings_fields() -> &'static [&'static str] {
    SettingsChange::FIELDS
}

/// A business's settings, named as `PATCH /v1/settings` takes them.
fn settings_view(tenant: &Tenant) -> Value {
    let r = &tenant.retention;
    json!({
        "name": tenant.name,
        "ai_mode": tenant.ai_mode,
        "retention_days": r.content_days,
        "disconnected_channel_days": r.disconnected_channel_days,
        "terminated_content_days": r.terminated_content_days,
        "terminated_account_days": r.terminated_account_days,
        "audit_days": r.audit_days,
        "instructions": tenant.instructions,
        "provider_order": tenant.provider_order,
        "mask_personal_data": tenant.mask_personal_data,
        "monthly_message_limit": tenant.monthly_message_limit,
        "monthly_token_limit": tenant.monthly_token_limit,
        "greeting_reply": tenant.greeting_reply,
        "thanks_reply": tenant.thanks_reply,
    })
}

/// A settings change from a JSON object: an unknown field, or a value of the wrong type, is a 422
/// naming that field (the value itself is never echoed).
fn settings_change(body: &[u8]) -> ApiResult<SettingsChange> {
    let object = json_body(body, true, SettingsChange::FIELDS)?;
    for (name, value) in &object {
        let field = SettingsChange::FIELDS
            .iter()
            .find(|f| **f == name.as_str())
            .copied()
            .unwrap_or("body");
        let single = Value::Object([(name.clone(), value.clone())].into_iter().collect());
        if serde_json::from_value::<SettingsChange>(single).is_err() {
            return Err(ApiError::invalid(
                field,
                format!("{field} has a value of the wrong type or out of range"),
            ));
        }
    }
    serde_json::from_value(Value::Object(object.into_iter().collect()))
        .map_err(|_| ApiError::invalid("body", "the settings are invalid"))
}

fn settings_error(err: ServiceError) -> ApiError {
    match err {
        ServiceError::Invalid(why) => {
            // The service names the setting first ("audit_days 0 is not …").
            let field = SettingsChange::FIELDS
                .iter()
                .find(|f| why.starts_with(**f))
                .copied()
                .unwrap_or("body");
            ApiError::invalid(field, why)
        }
        ServiceError::Conflict(why) => {
            ApiError::conflict("The request conflicts with the current state", why)
        }
        ServiceError::Store(store) => store.into(),
        other => {
            tracing::error!(error = %other, "settings failure");
            if other.is_retryable() {
                ApiError::unavailable("a service is busy")
            } else {
                ApiError::internal()
            }
        }
    }
}

/// `YYYY-MM` with a month from 01 to 12.
fn is_month(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 7
        && bytes[4] == b'-'
        && bytes[..4].iter().chain(&bytes[5..]).all(u8::is_ascii_digit)
        && matches!(text[5..].parse::<u8>(), Ok(1..=12))
}

/// A channel as the console shows it: never its credentials.
fn channel_view(channel: &Channel) -> Value {
    json!({
        "id": channel.channel_id,
        "platform": channel.platform.as_str(),
        "account_id": channel.account_id,
        "name": channel.name,
        "status": channel.status.as_str(),
        "reauth_reason": channel.reauth_reason,
        "connected_at": rfc3339(channel.connected_at),
        "disconnected_at": channel.disconnected_at.map(rfc3339),
        "token_expires_at": channel.token_expires_at.map(rfc3339),
    })
}

fn connect_error(err: ConnectError) -> ApiError {
    match err {
        ConnectError::NotConfigured(why) => ApiError::unavailable(format!(
            "this server is not set up to connect channels: {why}"
        )),
        ConnectError::Invalid(why) => ApiError::invalid("body", why),
        ConnectError::Service(ServiceError::Store(store)) => store.into(),
        ConnectError::Service(ServiceError::Conflict(why)) => {
            ApiError::conflict("The request conflicts with the current state", why)
        }
        ConnectError::Service(ServiceError::Invalid(why)) => {
            ApiError::conflict("The business may not do this now", why)
        }
        other if other.is_retryable() => {
            tracing::warn!(error = %other, "connect failure");
            ApiError::unavailable("a service is busy")
        }
        other => {
            tracing::error!(error = %other, "connect failure");
            ApiError::internal()
        }
    }
}

fn knowledge_view(entry: &KnowledgeEntry) -> Value {
    json!({
        "id": entry.entry_id,
        "question": entry.question,
        "answer": entry.answer,
        "alternates": entry.alternates,
        "created_at": rfc3339(entry.created_at),
    })
}

fn knowledge_invalid(err: knowledge::Invalid) -> ApiError {
    ApiError::invalid(err.field, err.reason)
}

/// An entry's texts from a body `{"question", "answer", "alternates"?}`.
fn entry_text(body: &[u8]) -> ApiResult<EntryText> {
    let body = json_body(body, true, &["question", "answer", "alternates"])?;
    let string = |name: &'static str| match body.get(name) {
        Some(Value::String(text)) => Ok(text.as_str()),
        None | Some(Value::Null) => Err(ApiError::invalid(name, format!("{name} is required"))),
        Some(_) => Err(ApiError::invalid(name, format!("{name} must be a string"))),
    };
    let (question, answer) = (string("question")?, string("answer")?);
    let alternates: Vec<String> = match body.get("alternates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::invalid("alternates", "alternates must be an array of strings")
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "alternates",
                "alternates must be an array of strings",
            ));
        }
    };
    EntryText::new(question, answer, &alternates).map_err(knowledge_invalid)
}

/// The rows of an import: `text/csv` with a `question,answer` header, or a JSON array of
/// `{question, answer}` (an element that is not such an object becomes a row with empty fields, so the
/// import rejects it by its number).
fn import_rows(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<ImportRow>> {
    let csv = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    let rows = if csv {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::invalid("body", "the CSV must be UTF-8"))?;
        knowledge::parse_csv(text).map_err(|why| ApiError::invalid("body", why))?
    } else {
        let items: Vec<Value> = serde_json::from_slice(body).map_err(|_| {
            ApiError::invalid(
                "body",
                "the body must be a JSON array of {question, answer} or text/csv",
            )
        })?;
        let field = |item: &Value, name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        items
            .iter()
            .map(|item| ImportRow {
                question: field(item, "question"),
                answer: field(item, "answer"),
            })
            .collect()
    };
    if rows.len() > knowledge::MAX_IMPORT_ROWS {
        return Err(ApiError::invalid(
            "body",
            format!("at most {} rows per import", knowledge::MAX_IMPORT_ROWS),
        ));
    }
    Ok(rows)
}

fn delivered_view(delivered: Delivered, status: u16) -> Response<Body> {
    match delivered {
        Delivered::Sent { message_id } => json(
            status,
            json!({"message_id": message_id, "duplicate": false}),
        ),
        // The same key sent it before: nothing sent now.
        Delivered::AlreadySent { message_id } => {
            json(200, json!({"message_id": message_id, "duplicate": true}))
        }
    }
}

impl Function for ConsoleApi {
    const NAME: &'static str = FUNCTION;

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The Lambda entry point (through `inbox_shared::runner`).
impl HttpFunction for ConsoleApi {
    async fn handle_http(
        &self,
        request: Request,
        _deadline: tokio::time::Instant,
    ) -> Response<Body> {
        self.handle(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert_eq!(
            matches(
                "/v1/conversations/{id}/messages",
                "/v1/conversations/a.b/messages"
            ),
            Some(vec!["a.b".to_owned()])
        );
        assert_eq!(
            matches("/v1/conversations/{id}", "/v1/conversations/"),
            None
        );
        assert_eq!(
            matches("/v1/conversations/{id}", "/v1/conversations/a/b"),
            None
        );
        assert_eq!(matches("/v1/drafts", "/v1/drafts"), Some(vec![]));
        assert_eq!(
            matches("/v1/conversations/{id}", "/v1/conversations/a%2Fb"),
            Some(vec!["a/b".to_owned()])
        );
    }

    #[test]
    fn public_ids_parse_to_our_ids_only() {
        let r = ConversationRef::parse("ch_1.conv_2").unwrap();
        assert_eq!(r.channel_id.as_str(), "ch_1");
        assert_eq!(r.conversation_id.as_str(), "conv_2");
        for bad in ["conv_2", "ch_1.", ".conv", "ch#1.conv_2", "ch_1.conv_2.x"] {
            assert_eq!(
                ConversationRef::parse(bad).unwrap_err().status,
                404,
                "{bad}"
            );
        }
        let d = DraftRef::parse("conv_2.drf_3").unwrap();
        assert_eq!(d.draft_id, "drf_3");
        assert_eq!(DraftRef::parse("conv_2.drf#3").unwrap_err().status, 404);
    }

    #[test]
    fn every_route_has_a_role_but_the_document() {
        for route in ROUTES {
            assert_eq!(route.role.is_none(), route.op == Op::OpenApi, "{route:?}");
        }
    }
}
