//! Self-contained OAuth `state` and the PKCE verifier derived from it.
//!
//! The contract makes `auth:getGitHubOAuthUrl` a query, and a query cannot write, so nothing about a
//! sign-in attempt can be stored when it starts. Instead the state carries its own facts (provider,
//! random nonce, expiry) and an HMAC-SHA256 tag under the server secret, so only this server can
//! mint one; and the PKCE verifier is a second HMAC of the same facts, so it never leaves the server
//! (the browser only ever sees its S256 challenge) and needs no storage either. Single use is
//! enforced when the sign-in completes, by recording the nonce (see `login.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use config::OAuthProvider;
use sha2::{Digest, Sha256};

/// How long a sign-in may take between fetching the URL and coming back with a code.
pub const STATE_TTL_MS: f64 = 10.0 * 60.0 * 1000.0;
const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const PAYLOAD_LEN: usize = 2 + NONCE_LEN + 8;
// Distinct labels keep the tag and the verifier independent though they share key and payload.
const TAG_LABEL: &[u8] = b"supportsignal.oauth.state\0";
const VERIFIER_LABEL: &[u8] = b"supportsignal.oauth.pkce-verifier\0";

/// A freshly issued state and the PKCE challenge that goes with it.
pub struct Issued {
    pub state: String,
    pub code_challenge: String,
}

/// What a genuine, unexpired state proves.
#[derive(Debug)]
pub struct Verified {
    /// Hex; recorded when the sign-in completes so the state cannot be used twice.
    pub nonce: String,
    pub expires_at: f64,
    pub code_verifier: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not a state this server issued (for this provider), or altered.
    Invalid,
    Expired,
}

fn provider_byte(provider: OAuthProvider) -> u8 {
    match provider {
        OAuthProvider::GitHub => 1,
        OAuthProvider::Google => 2,
    }
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without an early exit, so timing does not reveal how much of a forged tag was right.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn verifier_for(key: &[u8], payload: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(key, &[VERIFIER_LABEL, payload]))
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn issue(key: &[u8], provider: OAuthProvider, now: f64) -> Issued {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let expires_at = (now + STATE_TTL_MS) as u64;
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.extend_from_slice(&[VERSION, provider_byte(provider)]);
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&expires_at.to_be_bytes());
    let tag = hmac_sha256(key, &[TAG_LABEL, &payload]);
    Issued {
        state: format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        ),
        code_challenge: challenge_for(&verifier_for(key, &payload)),
    }
}

pub fn verify(
    key: &[u8],
    provider: OAuthProvider,
    state: &str,
    now: f64,
) -> Result<Verified, StateError> {
    let (payload, tag) = state.split_once('.').ok_or(StateError::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| StateError::Invalid)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Invalid)?;
    if payload.len() != PAYLOAD_LEN
        || !equal_in_constant_time(&tag, &hmac_sha256(key, &[TAG_LABEL, &payload]))
    {
        return Err(StateError::Invalid);
    }
    // Checked after the tag, so these bytes are our own: a GitHub state is no good for Google.
    if payload[0] != VERSION || payload[1] != provider_byte(provider) {
        return Err(StateError::Invalid);
    }
    let nonce = &payload[2..2 + NONCE_LEN];
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&payload[2 + NONCE_LEN..]);
    let expires_at = u64::from_be_bytes(expires) as f64;
    if expires_at <= now {
        return Err(StateError::Expired);
    }
    Ok(Verified {
        nonce: hex::encode(nonce),
        expires_at,
        code_verifier: verifier_for(key, &payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Keys longer than a block are hashed first (test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn challenge_matches_rfc_7636() {
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn an_issued_state_verifies_and_yields_the_challenged_verifier() {
        let issued = issue(KEY, OAuthProvider::GitHub, 1_000.0);
        let v = verify(KEY, OAuthProvider::GitHub, &issued.state, 2_000.0).unwrap();
        assert_eq!(challenge_for(&v.code_verifier), issued.code_challenge);
        assert!((43..=128).contains(&v.code_verifier.len()));
        assert_eq!(v.expires_at, 1_000.0 + STATE_TTL_MS);
        assert_ne!(
            issue(KEY, OAuthProvider::GitHub, 1_000.0).state,
            issued.state,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn forged_altered_foreign_and_stale_states_are_refused() {
        let issued = issue(KEY, OAuthProvider::GitHub, 1_000.0);
        let check = |state: &str| verify(KEY, OAuthProvider::GitHub, state, 2_000.0).map(|_| ());
        assert_eq!(
            verify(KEY, OAuthProvider::Google, &issued.state, 2_000.0).map(|_| ()),
            Err(StateError::Invalid)
        );
        assert_eq!(
            verify(
                b"another key entirely, 32+ bytes!",
                OAuthProvider::GitHub,
                &issued.state,
                2_000.0
            )
            .map(|_| ()),
            Err(StateError::Invalid)
        );
        let (payload, tag) = issued.state.split_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(payload).unwrap();
        // Pushing the expiry forward breaks the tag.
        raw[PAYLOAD_LEN - 1] ^= 0x01;
        let altered = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&raw));
        assert_eq!(check(&altered), Err(StateError::Invalid));
        for junk in ["", ".", "abc", "a.b", &issued.state[1..]] {
            assert_eq!(check(junk), Err(StateError::Invalid), "{junk:?}");
        }
        assert_eq!(
            verify(
                KEY,
                OAuthProvider::GitHub,
                &issued.state,
                1_000.0 + STATE_TTL_MS
            )
            .map(|_| ()),
            Err(StateError::Expired)
        );
    }
}
