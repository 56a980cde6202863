//! Plain server-rendered pages for outcomes outside the app: sign-in refusals, the SSH approval
//! pages. They need no WebAssembly and no session, only the site's stylesheet.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A page with a title, one message and a link back to the panel.
pub fn page(status: StatusCode, title: &str, text: &str) -> Response {
    page_with_link(status, title, text, ("/", "Back to Jumpgate"))
}

/// A page with a title, one message and one link.
pub fn page_with_link(status: StatusCode, title: &str, text: &str, link: (&str, &str)) -> Response {
    html(
        status,
        title,
        &format!(
            "<p role=\"alert\">{x}</p><p><a href=\"{href}\">{label}</a></p>",
            x = escape(text),
            href = escape(link.0),
            label = escape(link.1)
        ),
    )
}

/// A page around `body`, which must already be escaped HTML.
pub fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} – Jumpgate</title><link rel=\"stylesheet\" href=\"/pkg/jumpgate.css\">\
         </head><body><main class=\"notice\"><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
