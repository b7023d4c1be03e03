//! Who calls the console API: a business's staff member, as their Cognito token says.
//!
//! API Gateway's JWT authorizer checks the token (signature, issuer, audience, expiry) in AWS and hands
//! its claims to the function in the request context (`requestContext.authorizer.jwt.claims`, every
//! value a string: a list claim such as `cognito:groups` arrives as `[owner agent]`). The function still
//! checks the claims it relies on (defence in depth): the tenant from `custom:tenant_id` must be an id of
//! ours, the role from `cognito:groups` must be `owner` or `agent`, the subject must be present.
//! Anything else is a 401 (no usable identity) or a 403 (no role), never a guess.

//!
//! The rest of identity lives in the submodules: the user store ([`directory`], Cognito's admin and
//! sign-in calls), the JWT authorizer's checks for the local stack ([`verifier`]), and the claims in a
//! `lambda_http::Request` where API Gateway puts them ([`request`]).

pub mod directory;
pub mod request;
pub mod verifier;

use std::collections::HashMap;

pub use directory::{ConsoleUser, Directory, DirectoryError, LoginError, SessionTokens};
pub use request::{caller_of, claims_of, with_claims};
pub use verifier::{Claims, Verifier, VerifyError};

use crate::ids::TenantId;

/// The claim names the console relies on.
pub const TENANT_CLAIM: &str = "custom:tenant_id";
pub const GROUPS_CLAIM: &str = "cognito:groups";
pub const SUBJECT_CLAIM: &str = "sub";
pub const EMAIL_CLAIM: &str = "email";

/// What a staff member may do: an agent works the inbox (conversations, replies, handoffs, drafts);
/// an owner also runs the business's settings, knowledge, channels, usage, contacts and audit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Owner => "owner",
        }
    }

    /// The Cognito group of the role.
    pub fn group(self) -> &'static str {
        self.as_str()
    }
}

/// The staff member behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Cognito's `sub`: the user, as audit events name them.
    pub user_id: String,
    pub email: Option<String>,
    pub tenant_id: TenantId,
    pub role: Role,
}

impl Caller {
    /// How audit events name the acting user.
    pub fn actor(&self) -> String {
        format!("console:{}", self.user_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No token, or one without the claims every console user has: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid user without a console role: 403.
    #[error("{0}")]
    NoRole(String),
}

/// The caller from the JWT authorizer's claims.
pub fn caller_from_claims(claims: &HashMap<String, String>) -> Result<Caller, IdentityError> {
    let user_id = claims
        .get(SUBJECT_CLAIM)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(|| IdentityError::Unauthenticated("the token names no user (sub)".into()))?
        .clone();
    let tenant_id: TenantId = claims
        .get(TENANT_CLAIM)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            IdentityError::Unauthenticated(format!(
                "the token carries no valid {TENANT_CLAIM}: the user belongs to no business"
            ))
        })?;
    let groups = claims
        .get(GROUPS_CLAIM)
        .map(|g| groups_of(g))
        .unwrap_or_default();
    // The strongest role the user has.
    let role = groups
        .iter()
        .filter_map(|g| match *g {
            "owner" => Some(Role::Owner),
            "agent" => Some(Role::Agent),
            _ => None,
        })
        .max()
        .ok_or_else(|| {
            IdentityError::NoRole("the user is in neither the owner nor the agent group".into())
        })?;
    Ok(Caller {
        user_id,
        email: claims.get(EMAIL_CLAIM).cloned(),
        tenant_id,
        role,
    })
}

/// A list claim as API Gateway flattens it (`[a b]`), or a JSON array, or one bare value.
fn groups_of(value: &str) -> Vec<&str> {
    let trimmed = value.trim();
    if let Some(inner) = trimmed.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return inner
            .split([' ', ','])
            .map(|g| g.trim().trim_matches('"'))
            .filter(|g| !g.is_empty())
            .collect();
    }
    vec![trimmed]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_caller_comes_from_the_claims_it_relies_on() {
        let caller = caller_from_claims(&claims(&[
            ("sub", "0a1b"),
            ("custom:tenant_id", "ten_abc"),
            ("cognito:groups", "[agent owner]"),
            ("email", "a@kumo.example"),
        ]))
        .unwrap();
        assert_eq!(caller.role, Role::Owner);
        assert_eq!(caller.tenant_id.as_str(), "ten_abc");
        assert_eq!(caller.actor(), "console:0a1b");
        for groups in ["agent", "[agent]", "[\"agent\"]", "[\"agent\",\"other\"]"] {
            let caller = caller_from_claims(&claims(&[
                ("sub", "u"),
                ("custom:tenant_id", "ten_abc"),
                ("cognito:groups", groups),
            ]))
            .unwrap();
            assert_eq!(caller.role, Role::Agent, "{groups}");
        }
    }

    #[test]
    fn missing_or_malformed_claims_are_refused() {
        let unauthenticated = [
            claims(&[("custom:tenant_id", "ten_abc"), ("cognito:groups", "owner")]),
            claims(&[("sub", "u"), ("cognito:groups", "owner")]),
            claims(&[
                ("sub", "u"),
                ("custom:tenant_id", "TENANT#x"),
                ("cognito:groups", "owner"),
            ]),
        ];
        for c in unauthenticated {
            assert!(
                matches!(
                    caller_from_claims(&c),
                    Err(IdentityError::Unauthenticated(_))
                ),
                "{c:?}"
            );
        }
        for groups in [None, Some("[]"), Some("admins"), Some("[ownerx]")] {
            let mut c = claims(&[("sub", "u"), ("custom:tenant_id", "ten_abc")]);
            if let Some(g) = groups {
                c.insert("cognito:groups".into(), g.into());
            }
            assert!(
                matches!(caller_from_claims(&c), Err(IdentityError::NoRole(_))),
                "{groups:?}"
            );
        }
    }
}
