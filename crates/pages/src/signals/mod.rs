//! The Signals pages, on the Signals service's own listener, at the paths of SparkPost's app:
//! `/signals/health-score`, `/signals/spam-traps`, `/signals/engagement`,
//! `/signals/analytics` (Summary report), `/reports/message-events` (Events search) and
//! `/signals/integration`, with drill-downs below them; `/` leads to the Health Score.
//!
//! Every page reads only through the public Metrics, Signals and Events APIs (in-process,
//! see [`crate::api`]) and lists those requests at its foot, so each number it shows can be
//! reproduced with curl.

mod analytics;
mod common;
mod events;
mod health;
mod integration;
mod metrics;
mod reports;
mod session;

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use crate::api::{base_url, Client, Credential, Failure};
use crate::web::{self, Chrome, NavItem};

pub use session::Viewer;

/// The pages' shared state: the API router they call and the login sessions.
#[derive(Clone)]
pub struct Pages {
    api: Router,
    sessions: Arc<session::Sessions>,
}

/// The Signals service's router with the pages added: `api` is the service's API router
/// (`petrel_signals::router`), which keeps answering its own paths unchanged and which the
/// pages call in-process.
pub fn with_pages(api: Router) -> Router {
    let pages = Pages {
        api: api.clone(),
        sessions: Arc::new(session::Sessions::default()),
    };
    let guarded = Router::new()
        .route("/", get(|| async { Redirect::to("/signals/health-score") }))
        .route(
            "/signals",
            get(|| async { Redirect::to("/signals/health-score") }),
        )
        .route("/signals/health-score", get(health::overview))
        .route("/signals/health-score/{facet}/{value}", get(health::detail))
        .route("/signals/spam-traps", get(reports::traps_page))
        .route(
            "/signals/spam-traps/{facet}/{value}",
            get(reports::traps_page),
        )
        .route("/signals/engagement", get(reports::engagement_page))
        .route(
            "/signals/engagement/{facet}/{value}",
            get(reports::engagement_page),
        )
        .route("/signals/analytics", get(analytics::page))
        .route("/signals/analytics/export.csv", get(analytics::export_csv))
        .route("/reports/message-events", get(events::search))
        .route("/reports/message-events/{event_id}", get(events::detail))
        .route("/signals/integration", get(integration::page))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(
            pages.clone(),
            session::require,
        ));
    let open = Router::new()
        .route("/login", get(login_form).post(login))
        .merge(crate::assets::routes());
    Router::new()
        .merge(guarded)
        .merge(open)
        .fallback(not_found)
        .with_state(pages)
        .layer(middleware::from_fn(web::headers))
        .merge(api)
}

/// The navigation bar's entries.
const NAV: &[(&str, &str)] = &[
    ("Health Score", "/signals/health-score"),
    ("Spam Traps", "/signals/spam-traps"),
    ("Engagement Recency", "/signals/engagement"),
    ("Summary Report", "/signals/analytics"),
    ("Events", "/reports/message-events"),
    ("Integration", "/signals/integration"),
];

/// The layout for a Signals page whose nav entry is `current`.
pub(crate) fn chrome(title: impl Into<String>, current: &str, viewer: Option<&Viewer>) -> Chrome {
    let mut c = Chrome::bare(title, "Signals", "/signals/health-score");
    c.nav = NAV
        .iter()
        .map(|(label, href)| NavItem {
            label,
            href: href.to_string(),
            current: *href == current,
        })
        .collect();
    c.logout = viewer.is_some_and(|v| v.session.is_some());
    c
}

/// One page view: who asks, their API client, and the request's base URL for curl lines.
pub(crate) struct View {
    pub viewer: Viewer,
    pub api: Client,
    base: String,
}

impl View {
    pub fn new(pages: &Pages, viewer: Viewer, headers: &HeaderMap) -> View {
        View {
            api: Client::new(
                pages.api.clone(),
                Credential::Key(viewer.key.clone()),
                headers,
            ),
            viewer,
            base: base_url(headers),
        }
    }

    /// The layout, with the API requests made so far listed at the foot.
    pub fn chrome(&self, title: impl Into<String>, current: &str) -> Chrome {
        let mut c = chrome(title, current, Some(&self.viewer));
        c.calls = self.api.call_views(&self.base);
        c
    }

    /// A page for an API failure that the page cannot show in place: refused key (401),
    /// missing permission (403), or the service failing.
    pub fn failure(&self, f: Failure, current: &str) -> Response {
        let chrome = self.chrome("Error", current);
        let (heading, detail, next) = match f.status {
            StatusCode::UNAUTHORIZED => (
                "The API key was not accepted".to_string(),
                "The key is not (or no longer) known to this Signals service. Log in again \
                 with a key created by “petrel signals create-key --permissions read”."
                    .to_string(),
                Some(("Log in".to_string(), "/login".to_string())),
            ),
            StatusCode::FORBIDDEN => (
                "This key may not read reports".to_string(),
                format!(
                    "{} Create a key with the read permission: \
                     “petrel signals create-key --label dashboard --permissions read”.",
                    f.message
                ),
                None,
            ),
            StatusCode::NOT_FOUND => ("Not found".to_string(), f.message, None),
            StatusCode::BAD_REQUEST => (
                "The request was not valid".to_string(),
                f.message,
                Some(("Start over".to_string(), current.to_string())),
            ),
            _ => (
                "The Signals service could not answer".to_string(),
                format!(
                    "{} ({}). Try again in a moment; the service's log says more.",
                    f.message, f.status
                ),
                None,
            ),
        };
        web::error_page(chrome, f.status, heading, detail, next)
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        // An API client gets SparkPost's envelope, not a page.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                serde_json::json!({"errors": [{"message": "Resource could not be found."}]}),
            ),
        )
            .into_response();
    }
    web::error_page(
        chrome("Not found", "", None),
        StatusCode::NOT_FOUND,
        "There is no page here",
        "The address may be mistyped, or the page moved. The Signals pages start at the \
         Health Score.",
        Some(("Health Score".into(), "/signals/health-score".into())),
    )
}

#[derive(Template)]
#[template(path = "signals/login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Only a path on this service may follow a login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/signals/health-score".to_string(),
    }
}

async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    let page = LoginPage {
        chrome: Chrome::bare("Log in", "Signals", "/signals/health-score"),
        next: safe_next(q.next.as_deref()),
        error: None,
    };
    web::html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
}

/// Checks the key with a read request to the API; a good key gets a session cookie.
async fn login(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let refuse = |status: StatusCode, error: String| {
        let page = LoginPage {
            chrome: Chrome::bare("Log in", "Signals", "/signals/health-score"),
            next: next.clone(),
            error: Some(error),
        };
        web::html(status, &page)
    };
    if !web::same_origin(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This form was sent from another site; log in from this page.".into(),
        );
    }
    let key = form.key.trim().to_string();
    if key.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "Enter an API key.".into());
    }
    let mut api = Client::new(pages.api.clone(), Credential::Key(key.clone()), &headers);
    match api.get("/api/v1/events/ingest?per_page=1").await {
        Ok(_) => {
            let token = pages.sessions.create(key);
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, next.parse().expect("a path")),
                    (header::SET_COOKIE, session::set_cookie(&token, &headers)),
                ],
            )
                .into_response()
        }
        Err(f) if f.status == StatusCode::UNAUTHORIZED => refuse(
            StatusCode::UNAUTHORIZED,
            "This key is not known to this Signals service.".into(),
        ),
        Err(f) if f.status == StatusCode::FORBIDDEN => refuse(
            StatusCode::FORBIDDEN,
            "This key lacks the read permission (an MTA's upload key has only ingest). \
             Create one with “petrel signals create-key --permissions read”."
                .into(),
        ),
        Err(f) => refuse(
            StatusCode::BAD_GATEWAY,
            format!("The service could not check the key: {}", f.message),
        ),
    }
}

async fn logout(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    if !web::same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    if let Some(token) = &viewer.session {
        pages.sessions.remove(token);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".parse().expect("a path")),
            (header::SET_COOKIE, session::clear_cookie()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn login_only_leads_back_into_the_service() {
        assert_eq!(
            safe_next(Some("/signals/spam-traps?x=1")),
            "/signals/spam-traps?x=1"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/signals/health-score");
        assert_eq!(
            safe_next(Some("https://evil.example/")),
            "/signals/health-score"
        );
        assert_eq!(safe_next(Some("/\\evil.example")), "/signals/health-score");
        assert_eq!(safe_next(None), "/signals/health-score");
    }
}
