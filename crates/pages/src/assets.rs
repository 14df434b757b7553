//! The stylesheet, the small script and the icon, embedded in the binary and served under
//! `/static/`. Their URLs carry a version (a digest of the files) so a browser may cache them
//! for a year and still sees a new release at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

struct Asset {
    name: &'static str,
    body: &'static [u8],
    mime: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "petrel.css",
        body: include_bytes!("../static/petrel.css"),
        mime: "text/css; charset=utf-8",
    },
    Asset {
        name: "petrel.js",
        body: include_bytes!("../static/petrel.js"),
        mime: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "favicon.svg",
        body: include_bytes!("../static/favicon.svg"),
        mime: "image/svg+xml",
    },
];

/// A short digest of every asset, for `?v=` in their URLs.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for a in ASSETS {
            ctx.update(a.body);
        }
        ctx.finish().as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.mime),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// `/static/{file}` and `/favicon.ico`-free pages: the routes for the embedded files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/static/{name}", get(serve))
}
