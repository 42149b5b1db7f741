//! OAUTHBEARER tokens checked the way Kafka's unsecured validator does: an unsigned JWT
//! (`alg: none`) whose claims name the principal and bound its lifetime. There is no
//! signature to check, so this is for development and tests only, and must be enabled with
//! `sasl.oauthbearer.unsecured.validation.enable`.

use base64::Engine;

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub sub_claim: String,
    pub expected_audience: Vec<String>,
    pub clock_skew_ms: i64,
}

/// A valid token: the principal's name and when the token expires (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub subject: String,
    pub expires_at_ms: i64,
}

pub fn validate(token: &str, settings: &OAuthSettings, now_ms: i64) -> Result<ValidToken, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a JWT (header.payload.signature)".into());
    };
    let header = decode_json(header).map_err(|e| format!("token header: {e}"))?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("none") || !signature.is_empty() {
        return Err("only unsecured tokens (alg none, empty signature) are accepted".into());
    }
    let claims = decode_json(payload).map_err(|e| format!("token claims: {e}"))?;
    let subject = claims
        .get(&settings.sub_claim)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("the token has no {:?} claim", settings.sub_claim))?;
    let expires_at_ms = claims
        .get("exp")
        .and_then(|e| e.as_f64())
        .map(|seconds| (seconds * 1000.0) as i64)
        .ok_or("the token has no exp claim")?;
    if expires_at_ms + settings.clock_skew_ms < now_ms {
        return Err("the token has expired".into());
    }
    if let Some(issued_ms) = claims.get("iat").and_then(|i| i.as_f64()).map(|s| (s * 1000.0) as i64) {
        if issued_ms - settings.clock_skew_ms > now_ms {
            return Err("the token was issued in the future".into());
        }
    }
    if !settings.expected_audience.is_empty() {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.as_str()],
            Some(serde_json::Value::Array(list)) => list.iter().filter_map(|a| a.as_str()).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| settings.expected_audience.iter().any(|e| e == a))
        {
            return Err("the token's aud claim names none of sasl.oauthbearer.expected.audience".into());
        }
    }
    Ok(ValidToken {
        subject: subject.to_string(),
        expires_at_ms,
    })
}

fn decode_json(part: &str) -> Result<serde_json::Value, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.", enc(header), enc(claims))
    }

    fn settings() -> OAuthSettings {
        OAuthSettings {
            sub_claim: "sub".into(),
            expected_audience: Vec::new(),
            clock_skew_ms: 30_000,
        }
    }

    #[test]
    fn accepts_unsecured_token_and_rejects_bad_ones() {
        let now = 1_700_000_000_000;
        let good = token(
            r#"{"alg":"none"}"#,
            r#"{"sub":"alice","exp":1700000100,"iat":1700000000}"#,
        );
        assert_eq!(
            validate(&good, &settings(), now).unwrap(),
            ValidToken {
                subject: "alice".into(),
                expires_at_ms: 1_700_000_100_000
            }
        );
        let expired = token(r#"{"alg":"none"}"#, r#"{"sub":"alice","exp":1690000000}"#);
        assert!(validate(&expired, &settings(), now).unwrap_err().contains("expired"));
        let signed = token(r#"{"alg":"HS256"}"#, r#"{"sub":"alice","exp":1700000100}"#);
        assert!(validate(&signed, &settings(), now).is_err());
        let no_sub = token(r#"{"alg":"none"}"#, r#"{"exp":1700000100}"#);
        assert!(validate(&no_sub, &settings(), now).unwrap_err().contains("sub"));
        let mut with_aud = settings();
        with_aud.expected_audience = vec!["strom".into()];
        assert!(validate(&good, &with_aud, now).is_err());
        let aud = token(
            r#"{"alg":"none"}"#,
            r#"{"sub":"bob","exp":1700000100,"aud":["x","strom"]}"#,
        );
        assert_eq!(validate(&aud, &with_aud, now).unwrap().subject, "bob");
        assert!(validate("garbage", &settings(), now).is_err());
    }
}
