//! Every failure of the console API as an RFC 9457 problem: a `title` a person understands, a
//! `detail` about this request (ids, never message text or a token), `field` for a 422.

use inbox_shared::http_response::{problem, problem_with};
use inbox_shared::identity::IdentityError;
use inbox_shared::service::outbound::{AgentReplyError, ApproveError, DeliveryError};
use inbox_shared::store::StoreError;
use lambda_http::{Body, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub title: &'static str,
    pub detail: String,
    /// The request field that is wrong (a 422).
    pub field: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(401, "You are not signed in", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "Your role does not allow this", detail)
    }

    /// Also what an id of another tenant gets: it is never revealed to exist.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(404, "Not found", format!("no {what} {id}"))
    }

    pub fn no_route(path: &str) -> Self {
        Self::new(404, "Not found", format!("no route {path}"))
    }

    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            405,
            "Method not allowed",
            format!("this path answers {allowed}"),
        )
    }

    pub fn conflict(title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(409, title, detail)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "The request body is too large",
            format!("the body is over {limit} bytes"),
        )
    }

    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(422, "A field of the request is invalid", detail)
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "Temporarily unavailable: try again", detail)
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "Something went wrong on our side",
            "the error was logged; try again later",
        )
    }

    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        Self::new(502, "The messaging platform refused the message", detail)
    }

    pub fn response(&self) -> Response<Body> {
        match self.field {
            Some(field) => {
                let mut extensions = serde_json::Map::new();
                extensions.insert("field".into(), field.into());
                problem_with(self.status, self.title, &self.detail, extensions)
            }
            None => problem(self.status, self.title, &self.detail),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(err: IdentityError) -> Self {
        match err {
            IdentityError::Unauthenticated(why) => Self::unauthenticated(why),
            IdentityError::NoRole(why) => Self::forbidden(why),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::new(404, "Not found", format!("no {what}")),
            StoreError::Conflict(what) => {
                Self::conflict("The request conflicts with the current state", what)
            }
            StoreError::Unavailable(_) => Self::unavailable("the database is busy"),
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(err: DeliveryError) -> Self {
        match err {
            DeliveryError::WindowClosed(at) => Self::conflict(
                "The reply window is closed",
                format!("the platform's reply window closed at {at}"),
            ),
            DeliveryError::InProgress => Self::conflict(
                "This message is being sent right now",
                "another request with the same key is sending it; retry in a moment",
            ),
            DeliveryError::ChannelUnavailable(why) => Self::conflict(
                "The channel cannot send",
                format!("the channel is {why}: connect it again"),
            ),
            DeliveryError::Send(send) => {
                tracing::warn!(reason = send.reason(), code = ?send.code(), "platform refused a send");
                if send.is_retryable() {
                    Self::unavailable(format!("the platform is busy ({})", send.reason()))
                } else if matches!(
                    send,
                    inbox_shared::platform::send::SendError::WindowClosed { .. }
                ) {
                    Self::conflict(
                        "The reply window is closed",
                        "the platform says the reply window is closed",
                    )
                } else {
                    Self::bad_gateway(format!("refused: {}", send.reason()))
                }
            }
            DeliveryError::Store(store) => store.into(),
            DeliveryError::Vault(vault) => {
                tracing::error!(error = %vault, "vault failure");
                if vault.is_retryable() {
                    Self::unavailable("the key service is busy")
                } else {
                    Self::internal()
                }
            }
        }
    }
}

impl From<AgentReplyError> for ApiError {
    fn from(err: AgentReplyError) -> Self {
        match err {
            AgentReplyError::WindowClosed(why) => {
                Self::conflict("The reply window is closed", why.0)
            }
            AgentReplyError::Delivery(delivery) => delivery.into(),
        }
    }
}

impl From<ApproveError> for ApiError {
    fn from(err: ApproveError) -> Self {
        match err {
            ApproveError::NotFound(id) => Self::not_found("draft", &id),
            ApproveError::Rejected(id) => Self::conflict(
                "The draft was rejected",
                format!("draft {id} was rejected and can no longer be sent"),
            ),
            ApproveError::Delivery(delivery) => delivery.into(),
        }
    }
}
