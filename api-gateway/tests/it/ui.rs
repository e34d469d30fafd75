//! The operations page over HTTP: `/`, `/ui/` and every asset with its content type,
//! cache policy and Content-Security-Policy; nothing fetched from another host, no
//! inline script; with an API key the page still loads while its data needs the key.

use api_gateway::GatewayConfig;
use api_gateway::ui::{ASSETS, CONTENT_SECURITY_POLICY};

use crate::support::{Dirs, gateway, http};

/// The one absolute URL the assets may hold: SVG's XML namespace name, which
/// `createElementNS` and `xmlns` need and no browser ever fetches.
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// GET `url` → (status, the header `name`s asked for, body).
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    names: &[&str],
) -> (u16, Vec<Option<String>>, String) {
    let response = client.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let headers = names
        .iter()
        .map(|n| {
            response
                .headers()
                .get(*n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .collect();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_page_and_every_asset_are_served_with_type_cache_policy_and_csp() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    let names = [
        "content-type",
        "cache-control",
        "content-security-policy",
        "x-content-type-options",
        "etag",
    ];
    let page = ASSETS[0].body;
    let mut paths: Vec<(&str, &str)> = vec![("/", ASSETS[0].content_type)];
    paths.extend(ASSETS.iter().map(|a| (a.path, a.content_type)));
    for (path, content_type) in paths {
        let (status, headers, body) = fetch(&http, &format!("{}{path}", gw.base), &names).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers[0].as_deref(), Some(content_type), "{path}");
        assert_eq!(headers[1].as_deref(), Some("no-cache"), "{path}");
        let csp = headers[2].as_deref().unwrap_or_default();
        assert_eq!(csp, CONTENT_SECURITY_POLICY, "{path}");
        assert!(csp.starts_with("default-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-"), "{csp}");
        assert_eq!(headers[3].as_deref(), Some("nosniff"), "{path}");
        assert!(headers[4].is_some(), "{path} has an ETag");
        assert!(!body.is_empty(), "{path}");
        if path == "/" {
            assert_eq!(body, page, "/ and /ui/ are the same page");
        }
    }

    // `/ui` sends the browser to `/ui/`, where the page's paths resolve.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (status, headers, _) =
        fetch(&no_redirects, &format!("{}/ui", gw.base), &["location"]).await;
    assert_eq!(status, 308);
    assert_eq!(headers[0].as_deref(), Some("/ui/"));
    let (status, _, _) = fetch(&http, &format!("{}/ui/nothing.js", gw.base), &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_assets_name_no_other_host_and_the_page_has_no_inline_script() {
    let dirs = Dirs::sample();
    let (gw, _) = gateway(dirs.settings(GatewayConfig::default())).await;
    let http = http();
    for asset in ASSETS {
        let (_, _, body) = fetch(&http, &format!("{}{}", gw.base, asset.path), &[]).await;
        for scheme in ["http://", "https://"] {
            for (at, _) in body.match_indices(scheme) {
                assert!(
                    body[at..].starts_with(SVG_NAMESPACE),
                    "{} names another host: {}",
                    asset.path,
                    &body[at..(at + 60).min(body.len())]
                );
            }
        }
        // The key goes in a header; an EventSource could only put it in the URL.
        assert!(!body.contains("new EventSource"), "{}", asset.path);
    }

    let (_, _, page) = fetch(&http, &format!("{}/", gw.base), &[]).await;
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page loads its script");
    for script in scripts {
        let (tag, rest) = script.split_once('>').expect("a closed tag");
        assert!(
            tag.contains("src=\"/ui/"),
            "a script from the gateway: {tag}"
        );
        assert!(rest.starts_with("</script>"), "no inline code: {rest:.40}");
    }
    // The CSP would block inline handlers and style attributes: there must be none.
    let lower = page.to_ascii_lowercase();
    for pattern in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        " style=",
    ] {
        assert!(!lower.contains(pattern), "{pattern} in the page");
    }
    // Every `src` and `href` of the page is one of the served assets.
    for attr in ["src=\"", "href=\""] {
        for part in page.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            assert!(
                ASSETS.iter().any(|a| a.path == target),
                "{attr}{target} is not an asset"
            );
        }
    }
}

#[tokio::test]
async fn with_an_api_key_the_page_loads_without_it_and_its_data_needs_it() {
    let dirs = Dirs::sample();
    let key = "operations-page-key";
    let config = GatewayConfig {
        api_key: Some(key.into()),
        ..GatewayConfig::default()
    };
    let (gw, _) = gateway(dirs.settings(config)).await;
    let http = http();
    for path in std::iter::once("/").chain(ASSETS.iter().map(|a| a.path)) {
        let (status, _, _) = fetch(&http, &format!("{}{path}", gw.base), &[]).await;
        assert_eq!(status, 200, "{path} opens without the key");
    }
    // What the page calls: refused without the key (it then shows only the prompt),
    // answered with it. The stream too: the key is a header, never in the URL.
    for path in [
        "/api/v1/operations?limit=200",
        "/api/v1/strategies",
        "/api/v1/events",
    ] {
        let url = format!("{}{path}", gw.base);
        let (status, _, body) = fetch(&http, &url, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        let response = http
            .get(&url)
            .header("x-api-key", key)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{path} with the key");
    }
    let (status, _, _) = fetch(&http, &format!("{}/api/v1/health", gw.base), &[]).await;
    assert_eq!(status, 200, "health stays open");
}
