//! The web console: `GET /console/` and its static assets.
//!
//! The assets (the front end in `crates/server/console/`) are compiled into
//! the binary, so the console needs no second server, no CDN and no network
//! at run time. They hold no data and need no credentials: the console signs
//! its own calls to the AWS-shaped APIs with SigV4 in the browser, with the
//! credentials its user types, so every call it makes is authenticated,
//! authorized and audited on the one path like any aws CLI call, and it
//! can do nothing those credentials could not do without it.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles
//! from this origin only, no inline script, `connect-src 'self'`, no
//! framing) and is a fixed, bounded byte string: an unauthenticated caller
//! can make it neither read a body nor allocate more than a header map.
//! See docs/console.md.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::App;

/// The policy of every console answer. `style-src-attr 'unsafe-inline'`
/// lets the editor (CodeMirror) set the `style` attribute of its own
/// elements (sizes, gutter widths), and `img-src data:` lets it draw the
/// wavy underline of a lint finding (an SVG `data:` image; an image runs no
/// script); no inline `<style>` element or script is allowed, and the page
/// can talk to this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/console/`, its content type, its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file the console serves; `index.html` is also `/console/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../console/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../console/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/src/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/src/api.js"),
    },
    Asset {
        name: "sigv4.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/src/sigv4.js"),
    },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/src/pages.js"),
    },
    Asset {
        name: "editor.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/dist/editor.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../console/favicon.svg"),
    },
];

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(redirect))
        .route("/console/", get(index))
        .route("/console/{*path}", get(asset))
}

/// `/console` to `/console/`, so that the page's relative asset URLs resolve
/// under `/console/`.
async fn redirect() -> Response {
    let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
    resp.headers_mut()
        .insert("location", HeaderValue::from_static("/console/"));
    secure(resp)
}

async fn index() -> Response {
    serve("index.html")
}

/// Any other path under `/console/`: an asset's name, or 404 (deeper paths
/// too, so that nothing under `/console/` is taken for an AWS call).
async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(name: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        let mut resp = (StatusCode::NOT_FOUND, "not found\n").into_response();
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return secure(resp);
    };
    let mut resp = (StatusCode::OK, a.body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(a.content_type));
    // Revalidated on each load: a new binary's console is seen at once.
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    secure(resp)
}

/// The headers of every console answer.
fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_a_body() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS[..i].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn unknown_names_are_404_with_the_policy() {
        let resp = serve("../Cargo.toml");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().contains_key("content-security-policy"));
        let resp = serve("app.js");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .map(HeaderValue::as_bytes),
            Some(&b"text/javascript; charset=utf-8"[..])
        );
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_only_this_origin() {
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src 'self' 'unsafe-inline'"));
    }
}
