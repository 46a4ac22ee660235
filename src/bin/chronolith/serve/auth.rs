//! Optional bearer token: with one configured, every endpoint but the health checks
//! wants `Authorization: Bearer TOKEN` and answers 401 otherwise.

use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;

/// The environment variable read when `--bearer-token-file` is not given.
pub const TOKEN_ENV: &str = "CHRONOLITH_BEARER_TOKEN";

#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The token from the file (trimmed of surrounding whitespace) or the environment.
pub fn load(file: Option<&Path>) -> Result<Option<Token>, String> {
    let text = match file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("--bearer-token-file {}: {e}", path.display()))?
        }
        None => match std::env::var(TOKEN_ENV) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
    };
    let token = text.trim();
    if token.is_empty() {
        return Err("the bearer token is empty".into());
    }
    Ok(Some(Token(token.as_bytes().to_vec())))
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn check(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(want) = &state.token else { return next.run(req).await };
    let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let verdict = match given {
        None => Err("missing Authorization: Bearer header"),
        Some(v) => match v.strip_prefix(b"Bearer ") {
            Some(t) if same(t.trim_ascii(), &want.0) => Ok(()),
            Some(_) => Err("wrong bearer token"),
            None => Err("the Authorization header is not a bearer token"),
        },
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(why) => {
            let mut r = (StatusCode::UNAUTHORIZED, format!("unauthorized: {why}\n")).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
