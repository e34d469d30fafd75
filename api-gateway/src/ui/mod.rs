//! The operations page: a browser view of hosts, operations and trainings, served by
//! the gateway at `/` and `/ui/`.
//!
//! Everything the page needs is compiled into the binary (`include_str!` of
//! `api-gateway/ui/`): no CDN, no external font, no build step, so it works offline and
//! a binary always serves the page it was built with. The assets carry no data, so
//! they need no API key; the page fetches everything from `/api/v1` with the key the
//! user types in, which it sends as `X-API-Key` (never in a URL).
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts and styles only
//! from this origin, no inline code) and `Cache-Control: no-cache` with an `ETag`:
//! asset names are not fingerprinted, so a browser must revalidate, and an unchanged
//! asset costs a 304.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The policy every page answer carries. `connect-src 'self'` keeps the page's
/// `fetch` calls on the gateway; `frame-ancestors 'none'` stops click-jacking of the
/// cancel button.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served (the page itself also at `/`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
    /// Strong validator, computed at compile time from the body.
    etag: u64,
}

impl Asset {
    const fn new(path: &'static str, content_type: &'static str, body: &'static str) -> Self {
        Self {
            path,
            content_type,
            body,
            etag: fnv1a(body.as_bytes()),
        }
    }
}

/// The page's files. The HTML is the first.
pub const ASSETS: &[Asset] = &[
    Asset::new(
        "/ui/",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    Asset::new(
        "/ui/app.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/app.css"),
    ),
    Asset::new(
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    Asset::new(
        "/ui/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/api.js"),
    ),
    Asset::new(
        "/ui/chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/chart.js"),
    ),
    Asset::new(
        "/ui/icon.svg",
        "image/svg+xml",
        include_str!("../../ui/icon.svg"),
    ),
];

/// The page's routes: `/` and `/ui/` answer the page, `/ui` redirects to `/ui/` (so
/// the page's relative asset paths resolve), and each asset under `/ui/`.
pub fn router() -> Router {
    let mut router = Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve(&ASSETS[0], &headers) }),
        )
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }));
    for asset in ASSETS {
        router = router.route(
            asset.path,
            get(move |headers: HeaderMap| async move { serve(asset, &headers) }),
        );
    }
    router
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The page's URL says which operation is open; it is nobody else's business.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// FNV-1a, 64 bits: enough to tell two versions of a file apart, and a `const fn`, so
/// the ETags cost nothing at run time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_and_stylesheet_the_page_names_is_served() {
        let page = ASSETS[0].body;
        for name in ["app.css", "app.js", "icon.svg"] {
            assert!(page.contains(&format!("/ui/{name}")), "{name}");
        }
        for asset in ASSETS {
            assert!(asset.path.starts_with("/ui/"), "{}", asset.path);
            assert!(!asset.body.is_empty(), "{}", asset.path);
        }
    }

    #[test]
    fn every_element_the_script_looks_up_by_a_literal_id_is_on_the_page() {
        let page = ASSETS[0].body;
        let script = ASSETS
            .iter()
            .find(|a| a.path == "/ui/app.js")
            .map_or("", |a| a.body);
        let ids: Vec<&str> = script
            .split("$(\"")
            .skip(1)
            .filter_map(|rest| rest.split_once("\")").map(|(id, _)| id))
            .collect();
        assert!(ids.len() > 20, "{ids:?}");
        for id in ids {
            // Either the page has it or the script makes it (the smoothing slider).
            let made = script.contains(&format!("id: \"{id}\""));
            assert!(
                made || page.contains(&format!("id=\"{id}\"")),
                "#{id} is not on the page"
            );
        }
    }

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for rest in asset.body.split(" from \"./").skip(1) {
                let name = rest.split('"').next().unwrap_or_default();
                let path = format!("/ui/{name}");
                assert!(
                    ASSETS.iter().any(|a| a.path == path),
                    "{path} ({})",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn etags_differ_between_files() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        let mut tags: Vec<u64> = ASSETS.iter().map(|a| a.etag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[test]
    fn a_matching_etag_answers_not_modified() {
        let js = &ASSETS[2];
        let first = serve(js, &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, first.headers()[header::ETAG].clone());
        let again = serve(js, &request);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            again.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        assert_eq!(serve(js, &request).status(), StatusCode::OK);
    }
}
