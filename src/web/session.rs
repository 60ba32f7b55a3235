//! The extractors every handler starts from: who is signed in, and whether a
//! form post may act. A handler that takes one cannot forget the check.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Shared;
use super::auth::Session;
use crate::config::WebRole;

/// The session token the browser holds, if any.
pub fn token(state: &Shared, jar: &CookieJar) -> Option<String> {
    let name = state.engine.borrow().settings.web.session_cookie();
    jar.get(&name).map(|c| c.value().to_string())
}

/// Whether a form post comes from the console's own pages: a browser names
/// the page's origin in `Origin` (and says `Sec-Fetch-Site`), and it must be
/// the address the request went to. A client that sends neither is no
/// browser, and a page elsewhere cannot make one post.
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    // A browser that says where the request comes from is believed; others
    // are checked by the origin they name.
    if let Some(site) = text("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match text("origin") {
        None => true,
        Some(origin) => {
            let host = text("host");
            let named = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            named.is_some() && named == host
        }
    }
}

/// The answer to a form posted from another site.
pub fn cross_site() -> Response {
    (
        StatusCode::FORBIDDEN,
        "this form was sent from another site; open the console and try again",
    )
        .into_response()
}

/// The client's address: the connection's (unspecified when there is none,
/// as under a test router), or, from a proxy in `web.trusted_proxies`, the
/// last address its `X-Forwarded-For` names (the one that proxy added).
pub struct ClientAddr(pub std::net::IpAddr);

impl FromRequestParts<Shared> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let trusted = state
            .engine
            .borrow()
            .settings
            .web
            .trusted_proxies
            .contains(&peer);
        let forwarded = || {
            let last = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()?;
            last.trim().parse().ok()
        };
        Ok(ClientAddr(if trusted {
            forwarded().unwrap_or(peer)
        } else {
            peer
        }))
    }
}

/// A signed-in user; anyone else is sent to the sign-in page.
pub struct SignedIn(pub Session);

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(token) = token(state, &jar) else {
            return Err(Redirect::to("/login").into_response());
        };
        let users = state.engine.borrow().settings.web.users.clone();
        state
            .sessions
            .get(&state.pool, &users, &token)
            .await
            .map(SignedIn)
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

/// Every form carries the session's CSRF token beside its own fields.
#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

/// A form post from a signed-in user carrying the session's CSRF token;
/// `form` is the typed form.
pub struct Posted<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned + Send + 'static> FromRequest<Shared> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(cross_site());
        }
        let SignedIn(session) = SignedIn::from_request_parts(&mut parts, state).await?;
        let Form(WithCsrf { csrf, fields }) =
            Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        if csrf != session.csrf {
            return Err((
                StatusCode::FORBIDDEN,
                "the form is out of date: reload the page",
            )
                .into_response());
        }
        Ok(Posted {
            session,
            form: fields,
        })
    }
}

/// A form post that may change something: posted, as an editor.
pub struct Editing<T> {
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned + Send + 'static> FromRequest<Shared> for Editing<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, Response> {
        let Posted { session, form } = Posted::from_request(req, state).await?;
        if session.role != WebRole::Editor {
            return Err((StatusCode::FORBIDDEN, "viewers cannot change anything").into_response());
        }
        Ok(Editing { session, form })
    }
}
