//! The fake platforms hold to the wire protocol and its strictness rules (no AWS needed).

use inbox_tests::TEST_START;
use inbox_tests::fake_platforms::{AppFacts, FakePlatforms, proof_for};
use serde_json::{Value, json};
use time::Duration;

const META_ID: &str = "1001";
const META_SECRET: &str = "meta-secret";
const IG_ID: &str = "2002";
const IG_SECRET: &str = "ig-secret";
const REDIRECT: &str = "https://inbox.example/connect/meta/callback";
const IG_REDIRECT: &str = "https://inbox.example/connect/instagram/callback";

/// A world: user u1 with Page p1 (Instagram 17841000001), Page p3 (no Instagram) and Page p2 in a
/// Business Portfolio; user u2 with Page p9; WABA w1 with number ph1; Instagram account 17841555;
/// LINE channel ch1 whose bot is Ubot1.
async fn world() -> FakePlatforms {
    let fake = FakePlatforms::start(
        AppFacts {
            app_id: META_ID.into(),
            app_secret: META_SECRET.into(),
        },
        AppFacts {
            app_id: IG_ID.into(),
            app_secret: IG_SECRET.into(),
        },
    )
    .await;
    fake.add_facebook_user("u1");
    fake.add_facebook_user("u2");
    fake.add_page("u1", "p1", "Shop", Some("17841000001"), false);
    fake.add_page("u1", "p3", "Cafe", None, false);
    fake.add_page("u1", "p2", "Portfolio shop", None, true);
    fake.add_page("u2", "p9", "Elsewhere", None, false);
    fake.add_waba("w1", "ph1", "+1 555 0100", "Shop");
    fake.add_waba("w2", "ph2", "+1 555 0200", "Other");
    fake.add_instagram_user("17841555", "shop.ig");
    fake.add_line_bot("ch1", "line-secret", "Ubot1", "line-long-token");
    fake
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn call(
    method: &str,
    url: String,
    bearer: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some((content_type, bytes)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A Graph call with the token as Bearer and its appsecret_proof (Meta app secret).
async fn graph(
    fake: &FakePlatforms,
    method: &str,
    path: &str,
    token: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let proof = proof_for(META_SECRET, token);
    let mut pairs = params.to_vec();
    pairs.push(("appsecret_proof", &proof));
    let url = format!("{}/v25.0/{path}?{}", fake.graph_url(), query(&pairs));
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    call(method, url, Some(token), body).await
}

/// A graph.instagram.com versioned call (Instagram app secret).
async fn ig_graph(
    fake: &FakePlatforms,
    method: &str,
    path: &str,
    token: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let proof = proof_for(IG_SECRET, token);
    let mut pairs = params.to_vec();
    pairs.push(("appsecret_proof", &proof));
    let url = format!(
        "{}/v25.0/{path}?{}",
        fake.instagram_graph_url(),
        query(&pairs)
    );
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    call(method, url, Some(token), body).await
}

async fn graph_public(fake: &FakePlatforms, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    call(
        "GET",
        format!("{}/v25.0/{path}?{}", fake.graph_url(), query(params)),
        None,
        None,
    )
    .await
}

async fn exchange_login_code(
    fake: &FakePlatforms,
    code: &str,
    redirect: Option<&str>,
) -> (u16, Value) {
    let mut params = vec![
        ("client_id", META_ID),
        ("client_secret", META_SECRET),
        ("code", code),
    ];
    if let Some(redirect) = redirect {
        params.push(("redirect_uri", redirect));
    }
    graph_public(fake, "oauth/access_token", &params).await
}

async fn short_user_token(fake: &FakePlatforms, user: &str) -> String {
    let code = fake.meta_login_code(user, REDIRECT);
    let (status, body) = exchange_login_code(fake, &code, Some(REDIRECT)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn long_user_token(fake: &FakePlatforms, user: &str) -> String {
    let short = short_user_token(fake, user).await;
    let (status, body) = graph_public(
        fake,
        "oauth/access_token",
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", META_ID),
            ("client_secret", META_SECRET),
            ("fb_exchange_token", &short),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn page_token_from(fake: &FakePlatforms, user_token: &str, page: &str) -> String {
    let (status, body) = graph(
        fake,
        "GET",
        page,
        user_token,
        &[("fields", "id,name,access_token,instagram_business_account")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("a page token")
        .to_owned()
}

async fn business_token(fake: &FakePlatforms, user: &str, waba: &str) -> String {
    let code = fake.whatsapp_signup_code(user, waba);
    let (status, body) = exchange_login_code(fake, &code, None).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn debug(fake: &FakePlatforms, input: &str) -> (u16, Value) {
    let app_token = format!("{META_ID}|{META_SECRET}");
    let proof = proof_for(META_SECRET, &app_token);
    graph_public(
        fake,
        "debug_token",
        &[
            ("input_token", input),
            ("access_token", &app_token),
            ("appsecret_proof", &proof),
        ],
    )
    .await
}

fn error_code(body: &Value) -> (i64, Option<i64>) {
    (
        body["error"]["code"].as_i64().expect("a Graph error code"),
        body["error"]["error_subcode"].as_i64(),
    )
}

// ===== Facebook Login codes =====

#[tokio::test]
async fn login_code_exchanges_for_a_one_hour_user_token() {
    let fake = world().await;
    let code = fake.meta_login_code("u1", REDIRECT);
    let (status, body) = exchange_login_code(&fake, &code, Some(REDIRECT)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("EAAG-user-"));
    assert!(fake.tokens_issued().contains(&token.to_owned()));
    let (_, info) = debug(&fake, token).await;
    assert_eq!(info["data"]["type"], "USER");
    assert_eq!(info["data"]["is_valid"], true);
    assert_eq!(info["data"]["user_id"], "u1");
    assert_eq!(
        info["data"]["expires_at"],
        (TEST_START + Duration::hours(1)).unix_timestamp()
    );
}

#[tokio::test]
async fn a_login_code_is_single_use() {
    let fake = world().await;
    let code = fake.meta_login_code("u1", REDIRECT);
    assert_eq!(
        exchange_login_code(&fake, &code, Some(REDIRECT)).await.0,
        200
    );
    let (status, body) = exchange_login_code(&fake, &code, Some(REDIRECT)).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), (100, Some(36009)));
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(body["error"]["fbtrace_id"].is_string());
}

#[tokio::test]
async fn a_login_code_expires_after_ten_minutes() {
    let fake = world().await;
    let code = fake.meta_login_code("u1", REDIRECT);
    fake.set_now(TEST_START + Duration::minutes(10));
    let (status, body) = exchange_login_code(&fake, &code, Some(REDIRECT)).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), (100, Some(36007)));
}

#[tokio::test]
async fn a_login_code_needs_the_redirect_uri_it_was_issued_with() {
    let fake = world().await;
    let code = fake.meta_login_code("u1", REDIRECT);
    for redirect in [Some("https://inbox.example/other"), None] {
        let (status, body) = exchange_login_code(&fake, &code, redirect).await;
        assert_eq!(status, 400);
        assert_eq!(error_code(&body), (100, Some(36008)));
    }
    // A refused attempt does not use the code up.
    assert_eq!(
        exchange_login_code(&fake, &code, Some(REDIRECT)).await.0,
        200
    );
}

#[tokio::test]
async fn an_unknown_code_is_refused_without_subcode() {
    let fake = world().await;
    let (status, body) = exchange_login_code(&fake, "AQnotacode", Some(REDIRECT)).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), (100, None));
    assert!(body["error"].get("error_subcode").is_none());
    // An Instagram code is no Meta code.
    let ig_code = fake.instagram_login_code("17841555", REDIRECT);
    let (status, body) = exchange_login_code(&fake, &ig_code, Some(REDIRECT)).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
}

#[tokio::test]
async fn the_code_exchange_checks_the_app_id_and_secret() {
    let fake = world().await;
    let code = fake.meta_login_code("u1", REDIRECT);
    let base = [("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let wrong_id = [
        base.as_slice(),
        &[("client_id", "999"), ("client_secret", META_SECRET)],
    ]
    .concat();
    let (status, body) = graph_public(&fake, "oauth/access_token", &wrong_id).await;
    assert_eq!((status, error_code(&body)), (400, (101, None)));
    let wrong_secret = [
        base.as_slice(),
        &[("client_id", META_ID), ("client_secret", "nope")],
    ]
    .concat();
    let (status, body) = graph_public(&fake, "oauth/access_token", &wrong_secret).await;
    assert_eq!((status, error_code(&body)), (400, (1, None)));
    assert_eq!(body["error"]["message"], "Error validating client secret.");
}

#[tokio::test]
async fn a_user_token_becomes_long_lived_for_sixty_days() {
    let fake = world().await;
    let short = short_user_token(&fake, "u1").await;
    let (status, body) = graph_public(
        &fake,
        "oauth/access_token",
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", META_ID),
            ("client_secret", META_SECRET),
            ("fb_exchange_token", &short),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 5_183_944);
    let long = body["access_token"].as_str().unwrap();
    fake.set_now(TEST_START + Duration::days(59));
    let (_, info) = debug(&fake, long).await;
    assert_eq!(info["data"]["is_valid"], true);
    // An expired short-lived token cannot be exchanged.
    let (status, body) = graph_public(
        &fake,
        "oauth/access_token",
        &[
            ("grant_type", "fb_exchange_token"),
            ("client_id", META_ID),
            ("client_secret", META_SECRET),
            ("fb_exchange_token", &short),
        ],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(463))));
}

// ===== Embedded Signup codes =====

#[tokio::test]
async fn a_signup_code_gives_a_business_token_that_never_expires() {
    let fake = world().await;
    let code = fake.whatsapp_signup_code("u1", "w1");
    let (status, body) = exchange_login_code(&fake, &code, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("expires_in").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (_, info) = debug(&fake, token).await;
    let data = &info["data"];
    assert_eq!(data["type"], "SYSTEM_USER");
    assert_eq!(data["expires_at"], 0);
    assert_eq!(
        data["scopes"],
        json!([
            "whatsapp_business_management",
            "whatsapp_business_messaging"
        ])
    );
    assert_eq!(data["granular_scopes"][0]["target_ids"], json!(["w1"]));
}

#[tokio::test]
async fn a_signup_code_is_exchanged_without_redirect_uri() {
    let fake = world().await;
    let code = fake.whatsapp_signup_code("u1", "w1");
    let (status, body) = exchange_login_code(&fake, &code, Some(REDIRECT)).await;
    assert_eq!((status, error_code(&body)), (400, (100, Some(36008))));
}

#[tokio::test]
async fn a_signup_code_lives_thirty_seconds() {
    let fake = world().await;
    let code = fake.whatsapp_signup_code("u1", "w1");
    fake.set_now(TEST_START + Duration::seconds(31));
    let (status, body) = exchange_login_code(&fake, &code, None).await;
    assert_eq!((status, error_code(&body)), (400, (100, Some(36007))));
}

// ===== every Graph call =====

#[tokio::test]
async fn graph_paths_need_a_version() {
    let fake = world().await;
    for path in [
        "/oauth/access_token",
        "/v25/me/accounts",
        "/25.0/me/accounts",
        "/vX.0/debug_token",
    ] {
        let (status, body) = call("GET", format!("{}{path}", fake.graph_url()), None, None).await;
        assert_eq!((status, error_code(&body)), (400, (2635, None)), "{path}");
    }
}

#[tokio::test]
async fn anything_outside_the_protocol_is_an_unknown_path() {
    let fake = world().await;
    let token = long_user_token(&fake, "u1").await;
    for (method, path) in [
        ("GET", "me/feed"),
        ("PUT", "p1/subscribed_apps"),
        ("GET", "p1/messages"),
    ] {
        let (status, body) = graph(&fake, method, path, &token, &[], None).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(
            body,
            json!({"error":{"message":"Unknown path","type":"GraphMethodException","code":100}})
        );
    }
    for url in [
        format!("{}/v2/bot/nothing", fake.line_url()),
        format!("{}/oauth/authorize", fake.instagram_api_url()),
        format!("{}/v25.0/me/feed", fake.instagram_graph_url()),
    ] {
        assert_eq!(call("GET", url, None, None).await.0, 404);
    }
}

#[tokio::test]
async fn every_graph_call_with_a_token_needs_its_appsecret_proof() {
    let fake = world().await;
    let token = long_user_token(&fake, "u1").await;
    let base = format!("{}/v25.0/me/accounts", fake.graph_url());
    let (status, body) = call("GET", base.clone(), Some(&token), None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    assert_eq!(
        body["error"]["message"],
        "API calls from the server require an appsecret_proof argument"
    );
    let wrong = [
        proof_for(IG_SECRET, &token),
        proof_for(META_SECRET, "another token"),
        proof_for(META_SECRET, &token).to_uppercase(),
    ];
    for proof in wrong {
        let url = format!("{base}?{}", query(&[("appsecret_proof", &proof)]));
        let (status, body) = call("GET", url, Some(&token), None).await;
        assert_eq!((status, error_code(&body)), (400, (100, None)));
        assert_eq!(
            body["error"]["message"],
            "Invalid appsecret_proof provided in the API argument"
        );
    }
    let url = format!(
        "{base}?{}",
        query(&[("appsecret_proof", &proof_for(META_SECRET, &token))])
    );
    assert_eq!(call("GET", url, Some(&token), None).await.0, 200);
}

#[tokio::test]
async fn the_token_goes_in_the_authorization_header() {
    let fake = world().await;
    let token = long_user_token(&fake, "u1").await;
    let url = format!(
        "{}/v25.0/me/accounts?{}",
        fake.graph_url(),
        query(&[
            ("access_token", &token),
            ("appsecret_proof", &proof_for(META_SECRET, &token))
        ])
    );
    let (status, body) = call("GET", url, None, None).await;
    assert_eq!((status, error_code(&body)), (400, (104, None)));
}

#[tokio::test]
async fn an_unknown_token_is_190_without_subcode() {
    let fake = world().await;
    let (status, body) = graph(&fake, "GET", "me/accounts", "EAAG-user-forged", &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (190, None)));
}

#[tokio::test]
async fn an_expired_token_is_190_463() {
    let fake = world().await;
    let token = short_user_token(&fake, "u1").await;
    fake.set_now(TEST_START + Duration::hours(1));
    let (status, body) = graph(&fake, "GET", "me/accounts", &token, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(463))));
    let (status, info) = debug(&fake, &token).await;
    assert_eq!(status, 200);
    assert_eq!(info["data"]["is_valid"], false);
    assert_eq!(info["data"]["error"]["subcode"], 463);
}

#[tokio::test]
async fn revoked_tokens_fail_with_their_subcode_and_a_new_login_works() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    fake.revoke_tokens_of("u1", 460);
    for token in [&user, &page] {
        let (status, body) = graph(&fake, "GET", "p1", token, &[], None).await;
        assert_eq!((status, error_code(&body)), (400, (190, Some(460))));
        let (status, info) = debug(&fake, token).await;
        assert_eq!(status, 200);
        assert_eq!(info["data"]["is_valid"], false);
        assert_eq!(info["data"]["error"]["code"], 190);
        assert_eq!(info["data"]["error"]["subcode"], 460);
    }
    let again = long_user_token(&fake, "u1").await;
    assert_eq!(graph(&fake, "GET", "p1", &again, &[], None).await.0, 200);
}

#[tokio::test]
async fn revoking_a_page_leaves_the_user_token_alive() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    fake.revoke_tokens_of("p1", 492);
    let (_, body) = graph(&fake, "GET", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!(error_code(&body), (190, Some(492)));
    assert_eq!(
        graph(&fake, "GET", "me/accounts", &user, &[], None).await.0,
        200
    );
}

// ===== debug_token =====

#[tokio::test]
async fn debug_token_describes_a_login_token_with_every_page_in_granular_scopes() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let (status, info) = debug(&fake, &user).await;
    assert_eq!(status, 200, "{info}");
    let data = &info["data"];
    assert_eq!(data["app_id"], META_ID);
    assert_eq!(data["application"], "Inbox");
    assert!(data["issued_at"].as_i64().unwrap() > 0);
    assert!(data["data_access_expires_at"].as_i64().unwrap() > 0);
    for scope in [
        "pages_show_list",
        "pages_manage_metadata",
        "pages_messaging",
        "business_management",
        "instagram_basic",
        "instagram_manage_messages",
    ] {
        assert!(
            data["scopes"].as_array().unwrap().contains(&json!(scope)),
            "{scope}"
        );
    }
    let granular = data["granular_scopes"].as_array().unwrap();
    let show_list = granular
        .iter()
        .find(|g| g["scope"] == "pages_show_list")
        .unwrap();
    assert_eq!(show_list["target_ids"], json!(["p1", "p3", "p2"]));
    let page = page_token_from(&fake, &user, "p1").await;
    let (_, info) = debug(&fake, &page).await;
    assert_eq!(info["data"]["type"], "PAGE");
    assert_eq!(info["data"]["profile_id"], "p1");
    assert_eq!(info["data"]["expires_at"], 0);
}

#[tokio::test]
async fn debug_token_needs_the_app_token_and_its_proof() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let app_token = format!("{META_ID}|{META_SECRET}");
    let (status, body) = graph_public(
        &fake,
        "debug_token",
        &[("input_token", &user), ("access_token", &app_token)],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    let (status, body) = graph_public(
        &fake,
        "debug_token",
        &[
            ("input_token", &user),
            ("access_token", "1001|wrong"),
            ("appsecret_proof", &proof_for(META_SECRET, "1001|wrong")),
        ],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (190, None)));
}

#[tokio::test]
async fn debug_token_says_an_unknown_token_is_invalid() {
    let fake = world().await;
    let (status, info) = debug(&fake, "EAAG-user-forged").await;
    assert_eq!(status, 200);
    assert_eq!(info["data"]["is_valid"], false);
    assert_eq!(info["data"]["error"]["code"], 190);
}

// ===== Pages =====

#[tokio::test]
async fn me_accounts_leaves_out_portfolio_pages_and_absent_instagram_accounts() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let (status, body) = graph(
        &fake,
        "GET",
        "me/accounts",
        &user,
        &[
            ("fields", "id,name,access_token,instagram_business_account"),
            ("limit", "100"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["p1", "p3"]);
    assert_eq!(data[0]["name"], "Shop");
    assert_eq!(
        data[0]["instagram_business_account"],
        json!({"id": "17841000001"})
    );
    assert!(data[1].get("instagram_business_account").is_none());
    assert!(
        data[0]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("EAAG-page-")
    );
    assert!(body["paging"].is_object());
    assert!(body["paging"].get("next").is_none());
}

#[tokio::test]
async fn me_accounts_pages_through_a_limit() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let (_, body) = graph(
        &fake,
        "GET",
        "me/accounts",
        &user,
        &[("fields", "id"), ("limit", "1")],
        None,
    )
    .await;
    assert_eq!(body["data"], json!([{"id": "p1"}]));
    let next = body["paging"]["next"].as_str().expect("a next page");
    let (status, body) = call("GET", next.to_owned(), Some(&user), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([{"id": "p3"}]));
    assert!(body["paging"].get("next").is_none());
}

#[tokio::test]
async fn me_accounts_needs_a_user_token_and_known_fields() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    let (status, body) = graph(&fake, "GET", "me/accounts", &page, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    let (status, body) = graph(
        &fake,
        "GET",
        "me/accounts",
        &user,
        &[("fields", "id,tasks")],
        None,
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
}

#[tokio::test]
async fn a_portfolio_page_is_reachable_by_id_but_not_another_users_page() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let (status, body) = graph(
        &fake,
        "GET",
        "p2",
        &user,
        &[("fields", "id,name,access_token,instagram_business_account")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "p2");
    assert!(body["access_token"].is_string());
    assert!(body.get("instagram_business_account").is_none());
    for page in ["p9", "p404"] {
        let (status, body) = graph(&fake, "GET", page, &user, &[("fields", "id")], None).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, (100, Some(33))),
            "{page}"
        );
    }
}

#[tokio::test]
async fn page_tokens_expire_with_a_short_lived_user_token_only() {
    let fake = world().await;
    let short = short_user_token(&fake, "u1").await;
    let long = long_user_token(&fake, "u1").await;
    let from_short = page_token_from(&fake, &short, "p1").await;
    let from_long = page_token_from(&fake, &long, "p1").await;
    assert_ne!(from_short, from_long);
    assert_eq!(
        page_token_from(&fake, &long, "p1").await,
        from_long,
        "stable per user token"
    );
    fake.set_now(TEST_START + Duration::days(400));
    let (status, body) = graph(&fake, "GET", "p1/subscribed_apps", &from_short, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(463))));
    assert_eq!(
        graph(&fake, "GET", "p1/subscribed_apps", &from_long, &[], None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_page_subscription_needs_that_pages_token_and_known_fields() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let fields = [(
        "subscribed_fields",
        "messages,message_echoes,messaging_postbacks",
    )];
    let (status, body) = graph(&fake, "POST", "p1/subscribed_apps", &user, &fields, None).await;
    assert_eq!((status, error_code(&body)), (400, (210, None)));
    let other_page = page_token_from(&fake, &user, "p3").await;
    let (status, _) = graph(
        &fake,
        "POST",
        "p1/subscribed_apps",
        &other_page,
        &fields,
        None,
    )
    .await;
    assert_eq!(status, 400);
    let page = page_token_from(&fake, &user, "p1").await;
    let (status, body) = graph(
        &fake,
        "POST",
        "p1/subscribed_apps",
        &page,
        &[("subscribed_fields", "messages,bogus")],
        None,
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    let (status, body) = graph(&fake, "POST", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    assert_eq!(fake.subscribed_fields("p1"), None);
}

#[tokio::test]
async fn a_page_subscription_is_read_back_dropped_and_deleted() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    let (_, body) = graph(&fake, "GET", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!(body, json!({"data": []}));
    let (status, body) = graph(
        &fake,
        "POST",
        "p1/subscribed_apps",
        &page,
        &[("subscribed_fields", "messages,message_echoes")],
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(
        fake.subscribed_fields("p1"),
        Some(vec!["messages".to_owned(), "message_echoes".to_owned()])
    );
    let (_, body) = graph(&fake, "GET", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!(
        body,
        json!({"data": [{"id": META_ID, "name": "Inbox", "subscribed_fields": ["messages", "message_echoes"]}]})
    );
    fake.drop_subscription("p1");
    let (_, body) = graph(&fake, "GET", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!(body, json!({"data": []}));
    graph(
        &fake,
        "POST",
        "p1/subscribed_apps",
        &page,
        &[("subscribed_fields", "messages")],
        None,
    )
    .await;
    let (status, body) = graph(&fake, "DELETE", "p1/subscribed_apps", &page, &[], None).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(fake.subscribed_fields("p1"), None);
}

// ===== WhatsApp =====

#[tokio::test]
async fn a_waba_is_subscribed_read_back_and_unsubscribed_with_its_business_token() {
    let fake = world().await;
    let token = business_token(&fake, "u1", "w1").await;
    let (status, body) = graph(&fake, "POST", "w1/subscribed_apps", &token, &[], None).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(fake.subscribed_fields("w1"), Some(vec![]));
    let (_, body) = graph(&fake, "GET", "w1/subscribed_apps", &token, &[], None).await;
    assert_eq!(
        body,
        json!({"data": [{"whatsapp_business_api_data": {"id": META_ID, "name": "Inbox"}}]})
    );
    fake.drop_subscription("w1");
    assert_eq!(fake.subscribed_fields("w1"), None);
    graph(&fake, "POST", "w1/subscribed_apps", &token, &[], None).await;
    let (status, _) = graph(&fake, "DELETE", "w1/subscribed_apps", &token, &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(fake.subscribed_fields("w1"), None);
    let other = business_token(&fake, "u1", "w2").await;
    let (status, body) = graph(&fake, "POST", "w1/subscribed_apps", &other, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (200, None)));
}

#[tokio::test]
async fn phone_numbers_prove_access_to_the_waba() {
    let fake = world().await;
    let token = business_token(&fake, "u1", "w1").await;
    let fields = [("fields", "id,display_phone_number,verified_name")];
    let (status, body) = graph(&fake, "GET", "w1/phone_numbers", &token, &fields, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"data": [{"id": "ph1", "display_phone_number": "+1 555 0100", "verified_name": "Shop"}]})
    );
    let user = long_user_token(&fake, "u1").await;
    let other = business_token(&fake, "u1", "w2").await;
    for token in [&other, &user] {
        let (status, body) = graph(&fake, "GET", "w1/phone_numbers", token, &fields, None).await;
        assert_eq!((status, error_code(&body)), (400, (200, None)));
    }
}

#[tokio::test]
async fn registering_a_number_needs_a_six_digit_pin_and_remembers_it() {
    let fake = world().await;
    let token = business_token(&fake, "u1", "w1").await;
    for pin in ["12345", "1234567", "12a456", ""] {
        let body = json!({"messaging_product": "whatsapp", "pin": pin});
        let (status, reply) = graph(&fake, "POST", "ph1/register", &token, &[], Some(body)).await;
        assert_eq!((status, error_code(&reply)), (400, (100, None)), "{pin:?}");
    }
    let body = json!({"messaging_product": "sms", "pin": "123456"});
    assert_eq!(
        graph(&fake, "POST", "ph1/register", &token, &[], Some(body))
            .await
            .0,
        400
    );
    assert_eq!(fake.registered_pin("ph1"), None);
    let body = json!({"messaging_product": "whatsapp", "pin": "048213"});
    let (status, reply) = graph(
        &fake,
        "POST",
        "ph1/register",
        &token,
        &[],
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, reply), (200, json!({"success": true})));
    assert_eq!(fake.registered_pin("ph1").as_deref(), Some("048213"));
    let other = business_token(&fake, "u1", "w2").await;
    let (status, reply) = graph(&fake, "POST", "ph1/register", &other, &[], Some(body)).await;
    assert_eq!((status, error_code(&reply)), (400, (200, None)));
}

#[tokio::test]
async fn a_malformed_json_body_is_a_graph_400() {
    let fake = world().await;
    let token = business_token(&fake, "u1", "w1").await;
    let url = format!(
        "{}/v25.0/ph1/register?{}",
        fake.graph_url(),
        query(&[("appsecret_proof", &proof_for(META_SECRET, &token))])
    );
    let (status, body) = call(
        "POST",
        url,
        Some(&token),
        Some(("application/json", b"{not json".to_vec())),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
}

#[tokio::test]
async fn whatsapp_sends_need_the_wabas_token_and_a_registered_number() {
    let fake = world().await;
    let token = business_token(&fake, "u1", "w1").await;
    let message = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+15550111", "type": "text", "text": {"body": "hi"}});
    let (status, body) = graph(
        &fake,
        "POST",
        "ph1/messages",
        &token,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (133010, None)));
    let pin = json!({"messaging_product": "whatsapp", "pin": "123456"});
    graph(&fake, "POST", "ph1/register", &token, &[], Some(pin)).await;
    let (status, body) = graph(
        &fake,
        "POST",
        "ph1/messages",
        &token,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["wa_id"], "15550111");
    assert!(
        body["messages"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("wamid.")
    );
    assert_eq!(fake.sent_messages(), vec![message]);
    assert_eq!(fake.sends()[0].account_id, "ph1");
}

// ===== Messenger and Instagram-through-Facebook sends =====

#[tokio::test]
async fn page_sends_need_that_pages_token_and_are_recorded() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    let message = json!({"recipient": {"id": "psid-1"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}});
    let (status, body) = graph(
        &fake,
        "POST",
        "p1/messages",
        &page,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recipient_id"], "psid-1");
    assert!(body["message_id"].as_str().unwrap().starts_with("m_"));
    let ig = json!({"recipient": {"id": "igsid-1"}, "message": {"text": "hello"}});
    let (status, body) = graph(&fake, "POST", "me/messages", &page, &[], Some(ig.clone())).await;
    assert_eq!(
        (status, body["recipient_id"].clone()),
        (200, json!("igsid-1"))
    );
    assert_eq!(fake.sent_messages(), vec![message.clone(), ig]);
    let (status, body) = graph(
        &fake,
        "POST",
        "p3/messages",
        &page,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (200, None)));
    let (status, body) = graph(&fake, "POST", "p1/messages", &user, &[], Some(message)).await;
    assert_eq!((status, error_code(&body)), (400, (210, None)));
    let no_recipient = json!({"message": {"text": "hi"}});
    let (status, _) = graph(&fake, "POST", "p1/messages", &page, &[], Some(no_recipient)).await;
    assert_eq!(status, 400);
    assert_eq!(fake.sent_messages().len(), 2);
}

// ===== Instagram Login =====

async fn exchange_ig_code(fake: &FakePlatforms, fields: &[(&str, &str)]) -> (u16, Value) {
    call(
        "POST",
        format!("{}/oauth/access_token", fake.instagram_api_url()),
        None,
        Some((
            "application/x-www-form-urlencoded",
            query(fields).into_bytes(),
        )),
    )
    .await
}

fn ig_code_form<'a>(code: &'a str, redirect: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", IG_ID),
        ("client_secret", IG_SECRET),
        ("grant_type", "authorization_code"),
        ("redirect_uri", redirect),
        ("code", code),
    ]
}

async fn ig_short_token(fake: &FakePlatforms) -> String {
    let code = fake.instagram_login_code("17841555", IG_REDIRECT);
    let (status, body) = exchange_ig_code(fake, &ig_code_form(&code, IG_REDIRECT)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn ig_exchange(fake: &FakePlatforms, short: &str, secret: &str) -> (u16, Value) {
    let params = [
        ("grant_type", "ig_exchange_token"),
        ("client_secret", secret),
        ("access_token", short),
    ];
    call(
        "GET",
        format!(
            "{}/access_token?{}",
            fake.instagram_graph_url(),
            query(&params)
        ),
        None,
        None,
    )
    .await
}

async fn ig_refresh(fake: &FakePlatforms, long: &str) -> (u16, Value) {
    let params = [("grant_type", "ig_refresh_token"), ("access_token", long)];
    call(
        "GET",
        format!(
            "{}/refresh_access_token?{}",
            fake.instagram_graph_url(),
            query(&params)
        ),
        None,
        None,
    )
    .await
}

#[tokio::test]
async fn an_instagram_code_gives_a_short_lived_token_and_a_numeric_user_id() {
    let fake = world().await;
    let code = fake.instagram_login_code("17841555", IG_REDIRECT);
    let (status, body) = exchange_ig_code(&fake, &ig_code_form(&code, IG_REDIRECT)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], json!(17841555));
    assert_eq!(
        body["permissions"],
        json!([
            "instagram_business_basic",
            "instagram_business_manage_messages"
        ])
    );
    assert!(body["access_token"].as_str().unwrap().starts_with("IGAA"));
    let (status, body) = exchange_ig_code(&fake, &ig_code_form(&code, IG_REDIRECT)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_type"], "OAuthException");
    assert_eq!(body["code"], 400);
    assert!(body["error_message"].as_str().unwrap().contains("used"));
}

#[tokio::test]
async fn an_instagram_code_needs_its_redirect_uri_and_the_instagram_app() {
    let fake = world().await;
    let code = fake.instagram_login_code("17841555", IG_REDIRECT);
    let (status, body) = exchange_ig_code(&fake, &ig_code_form(&code, REDIRECT)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("redirect_uri")
    );
    let mut meta_app = ig_code_form(&code, IG_REDIRECT);
    meta_app[0] = ("client_id", META_ID);
    meta_app[1] = ("client_secret", META_SECRET);
    assert_eq!(exchange_ig_code(&fake, &meta_app).await.0, 400);
    let mut wrong_grant = ig_code_form(&code, IG_REDIRECT);
    wrong_grant[2] = ("grant_type", "client_credentials");
    assert_eq!(exchange_ig_code(&fake, &wrong_grant).await.0, 400);
    let meta_code = fake.meta_login_code("u1", IG_REDIRECT);
    assert_eq!(
        exchange_ig_code(&fake, &ig_code_form(&meta_code, IG_REDIRECT))
            .await
            .0,
        400
    );
    fake.set_now(TEST_START + Duration::hours(1));
    let (status, body) = exchange_ig_code(&fake, &ig_code_form(&code, IG_REDIRECT)).await;
    assert_eq!(status, 400);
    assert!(body["error_message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn an_instagram_token_becomes_long_lived_with_the_instagram_secret() {
    let fake = world().await;
    let short = ig_short_token(&fake).await;
    let (status, body) = ig_exchange(&fake, &short, META_SECRET).await;
    assert_eq!((status, error_code(&body)), (400, (1, None)));
    let (status, body) = ig_exchange(&fake, &short, IG_SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 5_184_000);
    let long = body["access_token"].as_str().unwrap();
    // Only a short-lived token is exchanged.
    assert_eq!(ig_exchange(&fake, long, IG_SECRET).await.0, 400);
}

#[tokio::test]
async fn an_instagram_token_is_refreshed_only_once_a_day_old_and_unexpired() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    let (status, body) = ig_refresh(&fake, &long).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("24 hours")
    );
    fake.set_now(TEST_START + Duration::hours(25));
    let (status, body) = ig_refresh(&fake, &long).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 5_184_000);
    let new = body["access_token"].as_str().unwrap();
    assert_ne!(new, long);
    let refreshes = fake.instagram_refreshes();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].ig_user_id, "17841555");
    assert_eq!(refreshes[0].old_token, long);
    // The old token stays valid until its own expiry.
    assert_eq!(
        ig_graph(&fake, "GET", "me", &long, &[("fields", "user_id")], None)
            .await
            .0,
        200
    );
    fake.set_now(TEST_START + Duration::days(61));
    let (status, body) = ig_refresh(&fake, &long).await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(463))));
    assert_eq!(ig_refresh(&fake, new).await.0, 200);
}

#[tokio::test]
async fn an_instagram_token_endpoint_refuses_a_wrong_proof_if_one_is_sent() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    fake.set_now(TEST_START + Duration::hours(25));
    let params = [
        ("grant_type", "ig_refresh_token"),
        ("access_token", long.as_str()),
        ("appsecret_proof", &proof_for(META_SECRET, &long)),
    ];
    let url = format!(
        "{}/refresh_access_token?{}",
        fake.instagram_graph_url(),
        query(&params)
    );
    let (status, body) = call("GET", url, None, None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
}

#[tokio::test]
async fn instagram_me_gives_the_professional_user_id_apart_from_the_app_scoped_id() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    let (status, body) = ig_graph(
        &fake,
        "GET",
        "me",
        &long,
        &[("fields", "user_id,username")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "17841555");
    assert_eq!(body["username"], "shop.ig");
    assert!(body["id"].is_string());
    assert_ne!(body["id"], body["user_id"]);
}

#[tokio::test]
async fn graph_instagram_proofs_use_the_instagram_secret() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    let url = format!(
        "{}/v25.0/me?{}",
        fake.instagram_graph_url(),
        query(&[
            ("fields", "user_id"),
            ("appsecret_proof", &proof_for(META_SECRET, &long))
        ])
    );
    let (status, body) = call("GET", url, Some(&long), None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    let url = format!("{}/v25.0/me?fields=user_id", fake.instagram_graph_url());
    let (status, body) = call("GET", url, Some(&long), None).await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    // A Meta token is no Instagram token.
    let meta = long_user_token(&fake, "u1").await;
    let (status, body) = ig_graph(&fake, "GET", "me", &meta, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (190, None)));
    let (status, _) = call(
        "GET",
        format!("{}/me", fake.instagram_graph_url()),
        Some(&long),
        None,
    )
    .await;
    assert_eq!(status, 400, "versioned paths need their version");
}

#[tokio::test]
async fn an_instagram_subscription_is_set_read_back_and_deleted() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    let (status, body) = ig_graph(
        &fake,
        "POST",
        "me/subscribed_apps",
        &long,
        &[("subscribed_fields", "messages,feed")],
        None,
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    let fields = "messages,message_reactions,messaging_seen,messaging_postbacks";
    let (status, body) = ig_graph(
        &fake,
        "POST",
        "me/subscribed_apps",
        &long,
        &[("subscribed_fields", fields)],
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (_, body) = ig_graph(&fake, "GET", "me/subscribed_apps", &long, &[], None).await;
    assert_eq!(
        body,
        json!({"data": [{"subscribed_fields": ["messages", "message_reactions", "messaging_seen", "messaging_postbacks"]}]})
    );
    assert_eq!(fake.subscribed_fields("17841555").map(|f| f.len()), Some(4));
    fake.drop_subscription("17841555");
    let (_, body) = ig_graph(&fake, "GET", "me/subscribed_apps", &long, &[], None).await;
    assert_eq!(body, json!({"data": []}));
    ig_graph(
        &fake,
        "POST",
        "me/subscribed_apps",
        &long,
        &[("subscribed_fields", fields)],
        None,
    )
    .await;
    let (status, _) = ig_graph(&fake, "DELETE", "me/subscribed_apps", &long, &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(fake.subscribed_fields("17841555"), None);
}

#[tokio::test]
async fn an_instagram_send_is_recorded() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    let message = json!({"recipient": {"id": "igsid-9"}, "message": {"text": "hi"}});
    let (status, body) = ig_graph(
        &fake,
        "POST",
        "me/messages",
        &long,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recipient_id"], "igsid-9");
    assert!(body["message_id"].is_string());
    let sends = fake.sends();
    assert_eq!(
        (sends[0].host.as_str(), sends[0].account_id.as_str()),
        ("instagram_graph", "17841555")
    );
    assert_eq!(sends[0].body, message);
}

#[tokio::test]
async fn a_revoked_instagram_token_fails_with_its_subcode() {
    let fake = world().await;
    let long = fake.instagram_token("17841555");
    fake.revoke_tokens_of("17841555", 460);
    let (status, body) = ig_graph(&fake, "GET", "me", &long, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(460))));
}

// ===== LINE =====

async fn line_mint(fake: &FakePlatforms, id: &str, secret: &str) -> (u16, Value) {
    let form = query(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ]);
    call(
        "POST",
        format!("{}/oauth2/v3/token", fake.line_url()),
        None,
        Some(("application/x-www-form-urlencoded", form.into_bytes())),
    )
    .await
}

async fn line(
    fake: &FakePlatforms,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    call(
        method,
        format!("{}{path}", fake.line_url()),
        Some(token),
        body,
    )
    .await
}

#[tokio::test]
async fn line_stateless_tokens_are_minted_for_the_right_pair_and_live_fifteen_minutes() {
    let fake = world().await;
    let (status, body) = line_mint(&fake, "ch1", "wrong").await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_client"))
    );
    let (status, body) = line_mint(&fake, "ch1", "line-secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    let (status, info) = line(&fake, "GET", "/v2/bot/info", token, None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["userId"], "Ubot1");
    fake.set_now(TEST_START + Duration::minutes(15));
    let (status, body) = line(&fake, "GET", "/v2/bot/info", token, None).await;
    assert_eq!(status, 401);
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn line_bot_info_names_the_bot_of_a_long_lived_token() {
    let fake = world().await;
    let (status, info) = line(&fake, "GET", "/v2/bot/info", "line-long-token", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["userId"], "Ubot1");
    assert!(info["basicId"].as_str().unwrap().starts_with('@'));
    assert_eq!(info["chatMode"], "bot");
    assert_eq!(info["markAsReadMode"], "manual");
    assert!(info["displayName"].is_string());
    assert_eq!(
        line(&fake, "GET", "/v2/bot/info", "forged", None).await.0,
        401
    );
    fake.revoke_tokens_of("ch1", 0);
    assert_eq!(
        line(&fake, "GET", "/v2/bot/info", "line-long-token", None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn a_line_webhook_endpoint_must_be_https_and_short() {
    let fake = world().await;
    let token = "line-long-token";
    let (status, body) = line(
        &fake,
        "GET",
        "/v2/bot/channel/webhook/endpoint",
        token,
        None,
    )
    .await;
    assert_eq!((status, body["active"].clone()), (200, json!(false)));
    let too_long = format!("https://inbox.example/{}", "a".repeat(480));
    for endpoint in [
        "http://inbox.example/webhooks/line",
        "https://",
        too_long.as_str(),
    ] {
        let (status, body) = line(
            &fake,
            "PUT",
            "/v2/bot/channel/webhook/endpoint",
            token,
            Some(json!({"endpoint": endpoint})),
        )
        .await;
        assert_eq!(status, 400, "{endpoint}");
        assert!(body["message"].is_string());
    }
    assert_eq!(fake.line_webhook_endpoint("Ubot1"), None);
    let endpoint = "https://inbox.example/webhooks/line";
    let (status, body) = line(
        &fake,
        "PUT",
        "/v2/bot/channel/webhook/endpoint",
        token,
        Some(json!({"endpoint": endpoint})),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(
        fake.line_webhook_endpoint("Ubot1").as_deref(),
        Some(endpoint)
    );
    let (_, body) = line(
        &fake,
        "GET",
        "/v2/bot/channel/webhook/endpoint",
        token,
        None,
    )
    .await;
    assert_eq!(body, json!({"endpoint": endpoint, "active": true}));
}

#[tokio::test]
async fn a_line_webhook_test_needs_an_endpoint_and_reports_the_result() {
    let fake = world().await;
    let token = "line-long-token";
    let (status, _) = line(
        &fake,
        "POST",
        "/v2/bot/channel/webhook/test",
        token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    let given = json!({"endpoint": "https://inbox.example/webhooks/line"});
    let (status, body) = line(
        &fake,
        "POST",
        "/v2/bot/channel/webhook/test",
        token,
        Some(given),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["statusCode"], 200);
    assert_eq!(body["reason"], "OK");
    assert!(
        body["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-02T09:00:00")
    );
    line(
        &fake,
        "PUT",
        "/v2/bot/channel/webhook/endpoint",
        token,
        Some(json!({"endpoint": "https://inbox.example/webhooks/line"})),
    )
    .await;
    fake.line_webhook_test_result("Ubot1", false);
    let (status, body) = line(&fake, "POST", "/v2/bot/channel/webhook/test", token, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["success"].clone(),
            body["statusCode"].clone(),
            body["reason"].clone(),
            body["detail"].clone()
        ),
        (
            json!(false),
            json!(404),
            json!("ERROR_STATUS_CODE"),
            json!("404")
        )
    );
}

#[tokio::test]
async fn line_sends_are_recorded_and_malformed_ones_refused() {
    let fake = world().await;
    let (_, minted) = line_mint(&fake, "ch1", "line-secret").await;
    let minted = minted["access_token"].as_str().unwrap();
    let reply = json!({"replyToken": "rt-1", "messages": [{"type": "text", "text": "hi"}]});
    let (status, body) = line(
        &fake,
        "POST",
        "/v2/bot/message/reply",
        "line-long-token",
        Some(reply.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sentMessages"].as_array().unwrap().len(), 1);
    assert!(body["sentMessages"][0]["quoteToken"].is_string());
    let push = json!({"to": "Uuser", "messages": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
    let (status, body) = line(
        &fake,
        "POST",
        "/v2/bot/message/push",
        minted,
        Some(push.clone()),
    )
    .await;
    assert_eq!(
        (status, body["sentMessages"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    assert_eq!(fake.sent_messages(), vec![reply, push]);
    assert_eq!(fake.sends()[1].account_id, "Ubot1");
    for bad in [
        json!({"messages": [{"type": "text", "text": "a"}]}),
        json!({"to": "U", "messages": []}),
    ] {
        let (status, body) = line(&fake, "POST", "/v2/bot/message/push", minted, Some(bad)).await;
        assert_eq!(status, 400);
        assert!(body["message"].is_string());
    }
    let url = format!("{}/v2/bot/message/push", fake.line_url());
    let (status, _) = call(
        "POST",
        url,
        Some(minted),
        Some(("application/json", b"[".to_vec())),
    )
    .await;
    assert_eq!(status, 400);
    let forged = line(
        &fake,
        "POST",
        "/v2/bot/message/push",
        "forged",
        Some(json!({})),
    )
    .await;
    assert_eq!(forged.0, 401);
    assert_eq!(fake.sent_messages().len(), 2);
}

// ===== faults and inspection =====

#[tokio::test]
async fn fail_next_comes_before_every_other_rule_and_only_once() {
    let fake = world().await;
    fake.fail_next("POST", "/subscribed_apps", 400, Some(190), Some(458));
    // No token, no proof: the injected failure still wins.
    let url = format!("{}/v25.0/p1/subscribed_apps", fake.graph_url());
    let (status, body) = call("POST", url.clone(), None, None).await;
    assert_eq!((status, error_code(&body)), (400, (190, Some(458))));
    assert_eq!(body["error"]["type"], "OAuthException");
    let (status, body) = call("POST", url, None, None).await;
    assert_eq!((status, error_code(&body)), (400, (104, None)));
    fake.fail_next("GET", "/v2/bot/info", 503, None, None);
    let (status, body) = line(&fake, "GET", "/v2/bot/info", "line-long-token", None).await;
    assert_eq!((status, error_code(&body)), (503, (1, None)));
    assert!(body["error"].get("error_subcode").is_none());
    assert_eq!(
        line(&fake, "GET", "/v2/bot/info", "line-long-token", None)
            .await
            .0,
        200
    );
    fake.fail_next("GET", "/me/accounts", 400, Some(4), None);
    let user = long_user_token(&fake, "u1").await;
    let (status, body) = graph(&fake, "GET", "me/accounts", &user, &[], None).await;
    assert_eq!((status, error_code(&body)), (400, (4, None)));
}

#[tokio::test]
async fn requests_are_kept_in_order_with_their_host() {
    let fake = world().await;
    let _ = short_user_token(&fake, "u1").await;
    line(&fake, "GET", "/v2/bot/info", "line-long-token", None).await;
    let _ = ig_short_token(&fake).await;
    let hosts: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .map(|(host, r)| (host, r.path))
        .collect();
    assert_eq!(
        hosts,
        [
            ("graph".to_owned(), "/v25.0/oauth/access_token".to_owned()),
            ("line".to_owned(), "/v2/bot/info".to_owned()),
            ("instagram_api".to_owned(), "/oauth/access_token".to_owned()),
        ]
    );
    assert_eq!(fake.graph.requests().len(), 1);
}

#[tokio::test]
async fn every_minted_token_is_listed_with_its_kind_prefix() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    let business = business_token(&fake, "u1", "w1").await;
    let ig = ig_short_token(&fake).await;
    let issued = fake.tokens_issued();
    for token in [&user, &page, &business, &ig] {
        assert!(issued.contains(token), "{token}");
    }
    assert!(issued.contains(&"line-long-token".to_owned()));
    assert!(page.starts_with("EAAG-page-") && business.starts_with("EAAG-biz-"));
    assert!(ig.starts_with("IGAA-"));
    assert!(user.len() > 40, "unguessable-looking");
}

#[tokio::test]
async fn no_token_bearing_endpoint_skips_the_proof() {
    let fake = world().await;
    let user = long_user_token(&fake, "u1").await;
    let page = page_token_from(&fake, &user, "p1").await;
    let business = business_token(&fake, "u1", "w1").await;
    let instagram = fake.instagram_token("17841555");
    let graph_calls = [
        ("GET", "me/accounts", &user),
        ("GET", "p1", &user),
        ("GET", "p1/subscribed_apps", &page),
        ("POST", "p1/subscribed_apps", &page),
        ("DELETE", "p1/subscribed_apps", &page),
        ("POST", "p1/messages", &page),
        ("POST", "me/messages", &page),
        ("GET", "w1/subscribed_apps", &business),
        ("POST", "w1/subscribed_apps", &business),
        ("DELETE", "w1/subscribed_apps", &business),
        ("GET", "w1/phone_numbers", &business),
        ("POST", "ph1/register", &business),
        ("POST", "ph1/messages", &business),
    ];
    for (method, path, token) in graph_calls {
        let url = format!("{}/v25.0/{path}", fake.graph_url());
        let (status, body) = call(method, url, Some(token), None).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, (100, None)),
            "{method} {path}"
        );
    }
    for (method, path) in [
        ("GET", "me"),
        ("GET", "me/subscribed_apps"),
        ("POST", "me/subscribed_apps"),
        ("DELETE", "me/subscribed_apps"),
        ("POST", "me/messages"),
    ] {
        let url = format!("{}/v25.0/{path}", fake.instagram_graph_url());
        let (status, body) = call(method, url, Some(&instagram), None).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, (100, None)),
            "{method} {path}"
        );
    }
    assert_eq!(fake.subscribed_fields("p1"), None);
    assert!(fake.sent_messages().is_empty());
}
