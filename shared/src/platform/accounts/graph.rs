//! Facebook Login for Business, Embedded Signup and the Graph API calls that connect Pages, their
//! Instagram accounts and WhatsApp Business Accounts (platform-spec 9.2, 9.4).

use serde::Deserialize;
use time::OffsetDateTime;

use super::{AccountApiError, appsecret_proof, read_json, read_success};
use crate::config::{Config, ConfigError};
use crate::https::endpoint;
use crate::platform::id_string;
use crate::secret::{AppSecret, AuthorizationCode, PlatformToken, RegistrationPin};

/// The Page webhook fields ingest handles; a Page is subscribed to exactly these.
pub const PAGE_FIELDS: &[&str] = &[
    "messages",
    "message_echoes",
    "messaging_postbacks",
    "message_reactions",
    "message_reads",
    "message_deliveries",
];

/// The Meta app: its id and secret.
#[derive(Debug, Clone)]
pub struct MetaApp {
    pub id: String,
    pub secret: AppSecret,
}

/// A user or business token as an exchange returned it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: PlatformToken,
    /// Seconds from now; `None` for a token that does not expire.
    pub expires_in: Option<u64>,
}

/// What `debug_token` says of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub app_id: Option<String>,
    /// `USER`, `PAGE`, `SYSTEM_USER`…
    pub kind: Option<String>,
    pub is_valid: bool,
    /// `None`: it does not expire.
    pub expires_at: Option<OffsetDateTime>,
    pub user_id: Option<String>,
    pub granular_scopes: Vec<GranularScope>,
    /// Why it is not valid, when it is not: Graph's code and subcode.
    pub error: Option<(Option<i64>, Option<i64>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GranularScope {
    pub scope: String,
    #[serde(default)]
    pub target_ids: Vec<String>,
}

impl TokenInfo {
    /// The ids a permission was granted for (Pages for `pages_show_list`, WABAs for
    /// `whatsapp_business_management`): how accounts in a Business Portfolio are found.
    pub fn targets_of(&self, scope: &str) -> Vec<String> {
        self.granular_scopes
            .iter()
            .filter(|s| s.scope == scope)
            .flat_map(|s| s.target_ids.iter().cloned())
            .collect()
    }
}

/// A Page the user manages, with its Page token.
#[derive(Debug, Clone)]
pub struct PageGrant {
    pub id: String,
    pub name: String,
    /// `None` when the login did not grant this Page's token (a permission left out in the dialog).
    pub token: Option<PlatformToken>,
    /// The Instagram professional account linked to the Page (the id Instagram webhooks carry).
    pub instagram_account: Option<String>,
}

/// A WhatsApp number of a WhatsApp Business Account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: String,
    #[serde(default)]
    pub verified_name: String,
}

/// The Graph API at `META_GRAPH_URL`/`META_GRAPH_VERSION`, as our Meta app.
#[derive(Clone)]
pub struct MetaGraph {
    http: reqwest::Client,
    base: String,
    app: MetaApp,
}

impl MetaGraph {
    pub fn new(config: &Config, http: reqwest::Client) -> Result<Self, ConfigError> {
        Ok(Self {
            http,
            base: format!("{}/{}", config.meta_graph_url, config.meta_graph_version),
            app: MetaApp {
                id: config.require_meta_app_id()?.to_owned(),
                secret: config.require_meta_app_secret()?.clone(),
            },
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app.id
    }

    /// A request with the token as a bearer and its `appsecret_proof`.
    fn authorized(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &PlatformToken,
    ) -> reqwest::RequestBuilder {
        super::authorized(&self.http, method, url, token, &self.app.secret)
    }

    fn url(&self, segments: &[&str]) -> Result<String, AccountApiError> {
        Ok(endpoint(&self.base, segments)?)
    }

    /// Exchanges a Facebook Login code (with the dialog's `redirect_uri`) or an Embedded Signup code
    /// (without one) for a token.
    pub async fn exchange_code(
        &self,
        code: &AuthorizationCode,
        redirect_uri: Option<&str>,
    ) -> Result<IssuedToken, AccountApiError> {
        let mut query = vec![
            ("client_id", self.app.id.as_str()),
            ("client_secret", self.app.secret.expose_secret()),
            ("code", code.expose_secret()),
        ];
        if let Some(uri) = redirect_uri {
            query.push(("redirect_uri", uri));
        }
        let request = self
            .http
            .get(self.url(&["oauth", "access_token"])?)
            .query(&query);
        issued("exchanging the authorization code", request).await
    }

    /// A long-lived (about 60 days) user token for a short-lived one: Page tokens read with it do not
    /// expire.
    pub async fn long_lived_user_token(
        &self,
        token: &PlatformToken,
    ) -> Result<IssuedToken, AccountApiError> {
        let request = self
            .http
            .get(self.url(&["oauth", "access_token"])?)
            .query(&[
                ("grant_type", "fb_exchange_token"),
                ("client_id", self.app.id.as_str()),
                ("client_secret", self.app.secret.expose_secret()),
                ("fb_exchange_token", token.expose_secret()),
            ]);
        issued("making the user token long-lived", request).await
    }

    /// `debug_token`, asked with the app token.
    pub async fn debug_token(&self, token: &PlatformToken) -> Result<TokenInfo, AccountApiError> {
        #[derive(Deserialize)]
        struct Answer {
            data: Data,
        }
        #[derive(Deserialize)]
        struct Data {
            #[serde(default, deserialize_with = "id_string")]
            app_id: Option<String>,
            #[serde(rename = "type")]
            kind: Option<String>,
            #[serde(default)]
            is_valid: bool,
            expires_at: Option<i64>,
            #[serde(default, deserialize_with = "id_string")]
            user_id: Option<String>,
            #[serde(default)]
            granular_scopes: Vec<GranularScope>,
            error: Option<DebugError>,
        }
        #[derive(Deserialize)]
        struct DebugError {
            code: Option<i64>,
            subcode: Option<i64>,
        }
        let app_token = PlatformToken::new(format!(
            "{}|{}",
            self.app.id,
            self.app.secret.expose_secret()
        ));
        let request = self.http.get(self.url(&["debug_token"])?).query(&[
            ("input_token", token.expose_secret()),
            ("access_token", app_token.expose_secret()),
            (
                "appsecret_proof",
                &appsecret_proof(&self.app.secret, &app_token),
            ),
        ]);
        let Answer { data } = read_json("checking the token (debug_token)", request).await?;
        Ok(TokenInfo {
            app_id: data.app_id,
            kind: data.kind,
            is_valid: data.is_valid,
            expires_at: data
                .expires_at
                .filter(|at| *at > 0)
                .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok()),
            user_id: data.user_id,
            granular_scopes: data.granular_scopes,
            error: data.error.map(|e| (e.code, e.subcode)),
        })
    }

    /// The Pages the user granted, with their tokens. `/me/accounts` leaves out Pages owned by a
    /// Business Portfolio; those are among `granted` (`debug_token`'s `pages_show_list` targets) and
    /// are read one by one.
    pub async fn pages(
        &self,
        user_token: &PlatformToken,
        granted: &[String],
    ) -> Result<Vec<PageGrant>, AccountApiError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            data: Vec<Page>,
            paging: Option<Paging>,
        }
        #[derive(Deserialize)]
        struct Paging {
            cursors: Option<Cursors>,
            next: Option<String>,
        }
        #[derive(Deserialize)]
        struct Cursors {
            after: Option<String>,
        }
        const FIELDS: &str = "id,name,access_token,instagram_business_account";
        // 100 per page, 20 pages: no business manages 2,000 Pages through one login.
        const MAX_PAGES: usize = 20;
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = self
                .authorized(
                    reqwest::Method::GET,
                    &self.url(&["me", "accounts"])?,
                    user_token,
                )
                .query(&[("fields", FIELDS), ("limit", "100")]);
            if let Some(cursor) = &after {
                request = request.query(&[("after", cursor)]);
            }
            let listing: Listing = read_json("listing the Pages (/me/accounts)", request).await?;
            pages.extend(listing.data);
            match listing.paging {
                Some(Paging {
                    cursors: Some(Cursors { after: Some(next) }),
                    next: Some(_),
                }) => after = Some(next),
                _ => break,
            }
        }
        for id in granted {
            if pages.iter().any(|p| &p.id == id) {
                continue;
            }
            let request = self
                .authorized(reqwest::Method::GET, &self.url(&[id])?, user_token)
                .query(&[("fields", FIELDS)]);
            pages.push(read_json("reading a Business Portfolio Page", request).await?);
        }
        Ok(pages
            .into_iter()
            .map(|p| PageGrant {
                id: p.id,
                name: p.name.unwrap_or_default(),
                token: p
                    .access_token
                    .filter(|t| !t.is_empty())
                    .map(PlatformToken::new),
                instagram_account: p.instagram_business_account.map(|a| a.id),
            })
            .collect())
    }

    /// Subscribes our app to an account's webhooks: a Page (with `fields`) or a WABA (no fields).
    pub async fn subscribe(
        &self,
        account_id: &str,
        token: &PlatformToken,
        fields: &[&str],
    ) -> Result<(), AccountApiError> {
        let mut request = self.authorized(
            reqwest::Method::POST,
            &self.url(&[account_id, "subscribed_apps"])?,
            token,
        );
        if !fields.is_empty() {
            request = request.query(&[("subscribed_fields", fields.join(","))]);
        }
        read_success("subscribing the account to our webhooks", request).await
    }

    /// The fields our app is subscribed to on the account (`None`: not subscribed at all). A WABA's
    /// subscription has no fields: `Some(vec![])`.
    pub async fn subscription(
        &self,
        account_id: &str,
        token: &PlatformToken,
    ) -> Result<Option<Vec<String>>, AccountApiError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            data: Vec<App>,
        }
        #[derive(Deserialize)]
        struct App {
            #[serde(default, deserialize_with = "id_string")]
            id: Option<String>,
            subscribed_fields: Option<Vec<String>>,
            whatsapp_business_api_data: Option<WhatsappApp>,
        }
        #[derive(Deserialize)]
        struct WhatsappApp {
            #[serde(default, deserialize_with = "id_string")]
            id: Option<String>,
        }
        let request = self.authorized(
            reqwest::Method::GET,
            &self.url(&[account_id, "subscribed_apps"])?,
            token,
        );
        let listing: Listing = read_json("reading the account's subscription", request).await?;
        Ok(listing.data.into_iter().find_map(|app| {
            let id = app
                .id
                .or_else(|| app.whatsapp_business_api_data.and_then(|w| w.id));
            (id.as_deref() == Some(self.app.id.as_str()))
                .then(|| app.subscribed_fields.unwrap_or_default())
        }))
    }

    pub async fn unsubscribe(
        &self,
        account_id: &str,
        token: &PlatformToken,
    ) -> Result<(), AccountApiError> {
        let request = self.authorized(
            reqwest::Method::DELETE,
            &self.url(&[account_id, "subscribed_apps"])?,
            token,
        );
        read_success("unsubscribing the account from our webhooks", request).await
    }

    /// The numbers of a WABA: also the proof that the token may manage it.
    pub async fn phone_numbers(
        &self,
        waba_id: &str,
        token: &PlatformToken,
    ) -> Result<Vec<PhoneNumber>, AccountApiError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            data: Vec<PhoneNumber>,
        }
        let request = self
            .authorized(
                reqwest::Method::GET,
                &self.url(&[waba_id, "phone_numbers"])?,
                token,
            )
            .query(&[("fields", "id,display_phone_number,verified_name")]);
        let listing: Listing =
            read_json("reading the WhatsApp Business Account's numbers", request).await?;
        Ok(listing.data)
    }

    /// Registers a number for the Cloud API; `pin` becomes its two-step verification PIN.
    pub async fn register_phone(
        &self,
        phone_number_id: &str,
        token: &PlatformToken,
        pin: &RegistrationPin,
    ) -> Result<(), AccountApiError> {
        let request = self
            .authorized(
                reqwest::Method::POST,
                &self.url(&[phone_number_id, "register"])?,
                token,
            )
            .json(&serde_json::json!({
                "messaging_product": "whatsapp",
                "pin": pin.expose_secret(),
            }));
        read_success("registering the WhatsApp number", request).await
    }

    /// The cheapest real call a Page token can make: reading the Page itself.
    pub async fn read_account(
        &self,
        account_id: &str,
        token: &PlatformToken,
    ) -> Result<(), AccountApiError> {
        let request = self
            .authorized(reqwest::Method::GET, &self.url(&[account_id])?, token)
            .query(&[("fields", "id")]);
        read_json::<serde::de::IgnoredAny>("reading the account with its token", request)
            .await
            .map(drop)
    }
}

#[derive(Deserialize)]
struct Page {
    id: String,
    name: Option<String>,
    access_token: Option<String>,
    instagram_business_account: Option<LinkedAccount>,
}

#[derive(Deserialize)]
struct LinkedAccount {
    id: String,
}

pub(super) async fn issued(
    call: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<IssuedToken, AccountApiError> {
    #[derive(Deserialize)]
    struct Issued {
        access_token: String,
        expires_in: Option<u64>,
    }
    let issued: Issued = read_json(call, request).await?;
    Ok(IssuedToken {
        token: PlatformToken::new(issued.access_token),
        expires_in: issued.expires_in,
    })
}
