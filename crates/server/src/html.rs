//! HTML pages the server writes itself: the sign-in pages and the portal's
//! alert pages. Everything placed in a page goes through [`escape`]: request
//! parameters, app names and detection fields are all someone else's text.
//!
//! Forms are protected from cross-site submission by a double-submitted
//! token: a random value in a `SameSite=Strict`, `HttpOnly` cookie and the
//! same value in a hidden field. Another site can neither read the cookie
//! nor make the browser send it with a form it posts.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siemgate_identity::IdentityError;
use siemgate_identity::grant::OneTime;
use siemgate_identity::secret::constant_time_eq;

/// The anti-forgery cookie every form of the server shares.
const FORM_TOKEN_COOKIE: &str = "siemgate_csrf";

/// How long a form may stay open before it must be loaded again.
const FORM_TOKEN_MAX_AGE_SECONDS: u32 = 1800;

/// `text` with the characters that mean something in HTML (in element
/// content and in quoted attribute values) written as character references.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The headers every page carries: no scripts at all, no framing (so no
/// clickjacking of the sign-in form), nothing cached, no referrer leaking
/// query parameters.
pub fn page(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; \
         base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    response
}

/// The frame all pages share: a narrow card, for forms and messages.
pub fn document(title: &str, main: &str) -> String {
    frame(title, "", main)
}

/// The frame of pages that show tables: as wide as the window allows.
pub fn wide_document(title: &str, main: &str) -> String {
    frame(title, WIDE_STYLE, main)
}

fn frame(title: &str, extra_style: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}{extra_style}</style></head>\
         <body><main>{main}</main></body></html>\n",
        title = escape(title),
    )
}

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

/// The anti-forgery token of the request's cookie, if it has a well-formed one.
pub fn form_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, FORM_TOKEN_COOKIE).filter(|v| {
        v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    })
}

/// The request's anti-forgery token, or a new one when it has none.
pub fn form_token_or_new(headers: &HeaderMap) -> Result<String, IdentityError> {
    form_token(headers).map_or_else(new_form_token, Ok)
}

/// A new anti-forgery token: 256 random bits.
pub fn new_form_token() -> Result<String, IdentityError> {
    OneTime::generate().map(|t| t.text)
}

/// True when `presented` (a form's hidden field) equals the request's
/// anti-forgery cookie, compared in constant time.
pub fn form_token_matches(headers: &HeaderMap, presented: &str) -> bool {
    form_token(headers).is_some_and(|c| constant_time_eq(c.as_bytes(), presented.as_bytes()))
}

/// Sets the anti-forgery cookie holding `token` on `response`; `secure`
/// when the server is reached over HTTPS.
pub fn set_form_token(response: &mut Response, token: &str, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{FORM_TOKEN_COOKIE}={token}; Path=/; Max-Age={FORM_TOKEN_MAX_AGE_SECONDS}; HttpOnly; \
         SameSite=Strict{secure}"
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:6px;\
box-shadow:0 1px 3px #0003}h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;\
font-size:1rem}button{margin-top:1.5rem;padding:.6rem 1.4rem;font-size:1rem}\
.error{background:#fde8e8;border-left:4px solid #c81e1e;padding:.6rem;margin:1rem 0}\
.muted{color:#555;font-size:.9rem}";

const WIDE_STYLE: &str = "main{max-width:72rem;margin:1.5rem auto}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}\
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #e5e7eb}\
th{width:14rem;font-weight:600;color:#333}thead th{width:auto;background:#f9fafb}\
tr.group th{background:#f3f4f6;text-transform:uppercase;font-size:.75rem;letter-spacing:.05em}\
td code,td.text{white-space:pre-wrap;word-break:break-all;font-family:ui-monospace,monospace}\
.empty{color:#999}.sev{font-weight:600;padding:.1rem .4rem;border-radius:3px;background:#eee}\
.sev-High{background:#fde8e8;color:#9b1c1c}.sev-Medium{background:#feecdc;color:#8a2c0d}\
.sev-Low{background:#fdf6b2;color:#723b13}nav{display:flex;justify-content:space-between;\
align-items:center;border-bottom:1px solid #e5e7eb;margin-bottom:1rem;padding-bottom:.5rem}\
nav form{margin:0}nav button{margin:0;padding:.3rem .8rem;font-size:.9rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_stays_text() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }
}
