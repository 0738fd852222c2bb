//! Secrets of file storage: single-use upload tokens (random, stored only as a hash) and the
//! signatures of download URLs (HMAC-SHA256 over the file and the expiry).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A fresh upload token: 32 random bytes, URL-safe.
pub(crate) fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token: its SHA-256, so a leaked table grants no uploads.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The key that signs download URLs, derived from the server secret so it never signs anything
/// else.
pub(crate) fn derive_key(server_secret: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(server_secret).expect("HMAC takes any key length");
    mac.update(b"supportsignal file download urls v1");
    mac.finalize().into_bytes().to_vec()
}

fn download_mac(key: &[u8], storage_id: &str, expires: u64, by: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("download\n{storage_id}\n{expires}\n{by}").as_bytes());
    mac
}

/// The signature of a download URL for `storage_id` until `expires` (s since the epoch), minted
/// for `by` (a user Id, or empty).
pub(crate) fn sign_download(key: &[u8], storage_id: &str, expires: u64, by: &str) -> String {
    URL_SAFE_NO_PAD.encode(
        download_mac(key, storage_id, expires, by)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `signature` is the one `sign_download` gives (compared in constant time).
pub(crate) fn verify_download(
    key: &[u8],
    storage_id: &str,
    expires: u64,
    by: &str,
    signature: &str,
) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    download_mac(key, storage_id, expires, by)
        .verify_slice(&tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_names_one_file_one_expiry_and_one_key() {
        let key = derive_key(b"a server secret of at least 32 chars!!");
        let sig = sign_download(&key, "file-a", 100, "user");
        assert!(verify_download(&key, "file-a", 100, "user", &sig));
        assert!(!verify_download(&key, "file-b", 100, "user", &sig));
        assert!(!verify_download(&key, "file-a", 101, "user", &sig));
        assert!(!verify_download(&key, "file-a", 100, "other", &sig));
        let other = derive_key(b"another server secret of 32 chars!!!!!");
        assert!(!verify_download(&other, "file-a", 100, "user", &sig));
        assert!(!verify_download(
            &key,
            "file-a",
            100,
            "user",
            "not base64 !"
        ));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(!token_hash(&a).contains(&a));
    }
}
