//! Password rules, hashing (argon2id) and verification, including bcrypt hashes imported from the
//! reference system, which are replaced with argon2id at the next successful sign-in.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use functions::{FnResult, FunctionError};

const SPECIAL: &str = "!@#$%^&*(),.?\":{}|<>";
const COMMON: [&str; 4] = ["123456", "password", "qwerty", "admin"];

/// The reference system's rules, applied on every path that sets a password: 8–128 characters;
/// upper, lower, digit and special character; no character three times in a row; none of the
/// well-known weak words. `Err` lists every rule broken.
pub fn check_strength(password: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    let len = password.chars().count();
    if !(8..=128).contains(&len) {
        problems.push("must be 8 to 128 characters long");
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        problems.push("needs an uppercase letter");
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        problems.push("needs a lowercase letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        problems.push("needs a digit");
    }
    if !password.chars().any(|c| SPECIAL.contains(c)) {
        problems.push("needs a special character");
    }
    let chars: Vec<char> = password.chars().collect();
    if chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        problems.push("must not repeat a character three times in a row");
    }
    let lower = password.to_ascii_lowercase();
    if COMMON.iter().any(|weak| lower.contains(weak)) {
        problems.push("must not contain a common password");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

/// `check_strength` as a function error naming the field.
pub fn require_strong(field: &str, password: &str) -> FnResult<()> {
    check_strength(password).map_err(|problems| {
        FunctionError::validation(
            field,
            format!("Password does not meet requirements: {problems}"),
        )
    })
}

/// An argon2id PHC string with a fresh salt. Slow on purpose: call it outside transactions.
pub fn hash(password: &str) -> FnResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FunctionError::internal(format!("password hashing failed: {e}")))
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs password work (hashing, verifying) on a small pool of its own, one thread per core. Each
/// argon2 call allocates about 19 MiB; on the shared blocking pool every thread that ever hashed
/// would keep that much in its malloc arena (measured: 800 MiB peak RSS under 16 concurrent
/// sign-ins), and more parallel hashing than cores would not finish any sooner anyway.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> FnResult<T> {
    static POOL: OnceLock<crossbeam_channel::Sender<Job>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for i in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            let queue = queue.clone();
            let _ = std::thread::Builder::new()
                .name(format!("passwords-{i}"))
                .spawn(move || queue.iter().for_each(|job| job()));
        }
        jobs
    });
    let (done, result) = tokio::sync::oneshot::channel();
    // A panic must not take a pool thread with it; the caller then sees "password work failed".
    pool.send(Box::new(move || {
        if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            let _ = done.send(value);
        }
    }))
    .map_err(|_| FunctionError::internal("password workers are gone"))?;
    result
        .await
        .map_err(|_| FunctionError::internal("password work failed"))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored in an older scheme: store this argon2id hash instead.
    YesRehash(String),
}

/// Checks `password` against `stored`. With no stored hash it still does the work of one check, so
/// response times do not reveal which emails have accounts.
pub fn verify(password: &str, stored: Option<&str>) -> Verified {
    match stored {
        Some(h) if h.starts_with("$argon2") => match PasswordHash::new(h) {
            Ok(parsed)
                if Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok() =>
            {
                Verified::Yes
            }
            _ => Verified::No,
        },
        Some(h) if h.starts_with("$2") => match bcrypt::verify(password, h) {
            Ok(true) => hash(password).map_or(Verified::Yes, Verified::YesRehash),
            _ => Verified::No,
        },
        _ => {
            let _ = PasswordHash::new(dummy_hash())
                .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed));
            Verified::No
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("not a real password, only here to spend time").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_strength("Str0ng!Pass").is_ok());
        for weak in [
            "short1!",
            "alllowercase1!",
            "ALLUPPER1!",
            "NoDigits!!x",
            "NoSpecial123",
            "Paaa55word!",
            "MyPassword1!",
            "xAdmin#123",
        ] {
            assert!(check_strength(weak).is_err(), "{weak} should be refused");
        }
        assert_eq!(
            check_strength("abc").unwrap_err().matches(',').count(),
            3,
            "every broken rule is listed"
        );
    }

    #[test]
    fn argon2_and_imported_bcrypt_hashes_verify() {
        let h = hash("Str0ng!Pass").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("Str0ng!Pass", Some(&h)), Verified::Yes);
        assert_eq!(verify("wrong", Some(&h)), Verified::No);
        let legacy = bcrypt::hash("Str0ng!Pass", 4).unwrap();
        match verify("Str0ng!Pass", Some(&legacy)) {
            Verified::YesRehash(new) => {
                assert_eq!(verify("Str0ng!Pass", Some(&new)), Verified::Yes)
            }
            other => panic!("bcrypt hash should verify and ask for a rehash, got {other:?}"),
        }
        assert_eq!(verify("wrong", Some(&legacy)), Verified::No);
        assert_eq!(verify("anything", None), Verified::No);
        assert_eq!(verify("anything", Some("")), Verified::No);
    }
}
