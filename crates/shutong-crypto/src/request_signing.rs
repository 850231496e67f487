//! 签名请求 on the wire: the string a system account (a department's 前置机 or business system) signs with
//! its SM2 key instead of sending a bearer token, and the headers that carry it (办法 第二十一条: 身份认证).
//! The platform checks them (`shutong_identity::signing`); a client builds them with [`sign`].
//!
//! The signed string, UTF-8, lines joined by `\n`:
//!
//! ```text
//! SHUTONG-SM2-1
//! METHOD                 (upper case)
//! PATH?QUERY             (as sent, percent-encoded)
//! TIMESTAMP              (Unix milliseconds, the X-Shutong-Timestamp header)
//! NONCE                  (16–64 of A–Z a–z 0–9 - _, the X-Shutong-Nonce header)
//! CONTENT-SM3            (hex SM3 of the body, the X-Shutong-Content-SM3 header; of "" when there is none)
//! ```
//!
//! signed with SM2/SM3 and the distinguishing identifier `1234567812345678`, DER, base64 in
//! `X-Shutong-Signature`; the account's username in `X-Shutong-Account`.

use base64::Engine;

use crate::NodeKey;

pub const SCHEME: &str = "SHUTONG-SM2-1";

pub const HEADER_ACCOUNT: &str = "x-shutong-account";
pub const HEADER_TIMESTAMP: &str = "x-shutong-timestamp";
pub const HEADER_NONCE: &str = "x-shutong-nonce";
pub const HEADER_CONTENT_SM3: &str = "x-shutong-content-sm3";
pub const HEADER_SIGNATURE: &str = "x-shutong-signature";

/// The string a client signs.
pub fn signing_string(method: &str, path_and_query: &str, timestamp_ms: i64, nonce: &str, content_sm3: &str) -> String {
    format!("{SCHEME}\n{}\n{path_and_query}\n{timestamp_ms}\n{nonce}\n{}", method.to_ascii_uppercase(), content_sm3.to_ascii_lowercase())
}

/// A fresh nonce: 32 characters of A–Z a–z 0–9.
pub fn new_nonce() -> String {
    use rand::Rng;
    use rand::distributions::Alphanumeric;
    rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

/// The five headers of a signed request.
pub fn sign(
    key: &NodeKey,
    account: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp_ms: i64,
    nonce: &str,
) -> [(&'static str, String); 5] {
    sign_digest(key, account, method, path_and_query, &hex::encode(crate::sm3(body)), timestamp_ms, nonce)
}

/// The five headers of a signed request whose body's SM3 (hex) is already known: a streamed upload hashed
/// as it was read from disk.
pub fn sign_digest(
    key: &NodeKey,
    account: &str,
    method: &str,
    path_and_query: &str,
    content_sm3: &str,
    timestamp_ms: i64,
    nonce: &str,
) -> [(&'static str, String); 5] {
    let content = content_sm3.to_ascii_lowercase();
    let message = signing_string(method, path_and_query, timestamp_ms, nonce, &content);
    [
        (HEADER_ACCOUNT, account.to_string()),
        (HEADER_TIMESTAMP, timestamp_ms.to_string()),
        (HEADER_NONCE, nonce.to_string()),
        (HEADER_CONTENT_SM3, content),
        (HEADER_SIGNATURE, base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_over_the_signing_string() {
        let key = NodeKey::generate();
        let nonce = new_nonce();
        assert_eq!(nonce.len(), 32);
        let headers = sign(&key, "ga.qianzhiji", "get", "/api/v1/me?x=1", b"", 1_700_000_000_000, &nonce);
        let content = hex::encode(crate::sm3(b""));
        assert_eq!(headers[3].1, content);
        let message = signing_string("GET", "/api/v1/me?x=1", 1_700_000_000_000, &nonce, &content);
        let signature = base64::engine::general_purpose::STANDARD.decode(&headers[4].1).unwrap();
        let public = crate::PublicKey::from_pem(&key.public_key_pem()).unwrap();
        assert!(public.verify(message.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"something else", &signature).is_err());
    }
}
