//! Claims in a `lambda_http::Request`, where API Gateway's JWT authorizer puts them: the HTTP API's
//! request context, `requestContext.authorizer.jwt.claims`. [`with_claims`] is the local stack's half
//! (after [`super::Verifier`] has checked the token); [`caller_of`] is the function's half, the same in
//! AWS and locally.

use std::collections::HashMap;

use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::{Caller, IdentityError, caller_from_claims};

/// The request with `claims` as the JWT authorizer's, in its HTTP API (v2) request context; any other
/// context is replaced by a v2 one.
pub fn with_claims(request: Request, claims: HashMap<String, String>) -> Request {
    let mut context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.clone(),
        _ => ApiGatewayV2httpRequestContext::default(),
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    context.authorizer = Some(authorizer);
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

/// The JWT authorizer's claims of a request, if it has any.
pub fn claims_of(request: &Request) -> Option<&HashMap<String, String>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The caller of a request, from the JWT authorizer's claims: a 401 without them.
pub fn caller_of(request: &Request) -> Result<Caller, IdentityError> {
    match claims_of(request) {
        Some(claims) if !claims.is_empty() => caller_from_claims(claims),
        _ => Err(IdentityError::Unauthenticated(
            "no verified token: the request did not come through the JWT authorizer".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    #[test]
    fn claims_travel_in_the_request_context_as_api_gateway_puts_them() {
        let request = Request::default();
        assert!(matches!(
            caller_of(&request),
            Err(IdentityError::Unauthenticated(_))
        ));
        let claims: HashMap<String, String> = [
            ("sub", "u-1"),
            ("custom:tenant_id", "ten_abc"),
            ("cognito:groups", "[agent]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let request = with_claims(request, claims.clone());
        assert_eq!(claims_of(&request), Some(&claims));
        let caller = caller_of(&request).unwrap();
        assert_eq!(caller.role, Role::Agent);
        assert_eq!(caller.user_id, "u-1");

        // The same shape as a deployed HTTP API event.
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "GET /v1/drafts", "rawPath": "/v1/drafts", "rawQueryString": "",
            "headers": {"host": "api.example"},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "api.example", "domainPrefix": "api",
                "http": {"method": "GET", "path": "/v1/drafts", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                "requestId": "r", "routeKey": "GET /v1/drafts", "stage": "$default", "time": "02/Nov/2026:09:00:00 +0000", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": {"sub": "u-2", "custom:tenant_id": "ten_abc", "cognito:groups": "[owner]"}, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(caller_of(&request).unwrap().role, Role::Owner);
    }
}
