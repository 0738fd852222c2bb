//! Which files may be stored: the type is read from the bytes (magic numbers, the `infer` crate),
//! not taken from the client's word; a declared `Content-Type` that disagrees is refused.

/// Types recognised by their leading bytes that we store.
const ALLOWED: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heif",
    "image/heic",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
];

/// Text has no magic number: these are accepted when the bytes are UTF-8 text.
const TEXT: &[&str] = &["text/plain", "text/csv"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindError {
    /// The bytes are of a type we do not store (named when recognised).
    Unsupported(String),
    /// The declared type is not what the bytes are.
    Mismatch { declared: String, detected: String },
}

/// `image/JPG; charset=x` → `image/jpeg`.
fn normalize(declared: &str) -> String {
    let bare = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match bare.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        _ => bare,
    }
}

fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // Cut in the middle of a character by the head's length: still text.
        Err(e) => e.error_len().is_none(),
    }
}

/// The content type to store for a file starting with `head`, or why it is refused. A missing or
/// generic (`application/octet-stream`) declaration takes the detected type.
pub fn check(head: &[u8], declared: Option<&str>) -> Result<String, KindError> {
    let declared = declared
        .map(normalize)
        .filter(|d| !d.is_empty() && d != "application/octet-stream");
    match infer::get(head) {
        Some(kind) => {
            let detected = kind.mime_type();
            if !ALLOWED.contains(&detected) {
                return Err(KindError::Unsupported(detected.to_string()));
            }
            match declared {
                Some(declared) if declared != detected => Err(KindError::Mismatch {
                    declared,
                    detected: detected.to_string(),
                }),
                _ => Ok(detected.to_string()),
            }
        }
        None if is_text(head) => match declared {
            None => Ok("text/plain".into()),
            Some(declared) if TEXT.contains(&declared.as_str()) => Ok(declared),
            Some(declared) => Err(KindError::Unsupported(declared)),
        },
        None => Err(KindError::Unsupported(
            declared.unwrap_or_else(|| "unrecognised binary data".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";

    #[test]
    fn the_bytes_decide_the_type() {
        assert_eq!(check(PNG, Some("image/png")), Ok("image/png".into()));
        assert_eq!(check(PNG, None), Ok("image/png".into()));
        assert_eq!(
            check(PNG, Some("application/octet-stream")),
            Ok("image/png".into())
        );
        assert_eq!(
            check(PDF, Some("application/pdf; x=y")),
            Ok("application/pdf".into())
        );
        assert_eq!(
            check(b"plain words", Some("text/csv")),
            Ok("text/csv".into())
        );
        assert_eq!(check("caf\u{e9}".as_bytes(), None), Ok("text/plain".into()));
    }

    #[test]
    fn disguised_and_unsupported_files_are_refused() {
        assert_eq!(
            check(PNG, Some("application/pdf")),
            Err(KindError::Mismatch {
                declared: "application/pdf".into(),
                detected: "image/png".into()
            })
        );
        assert!(matches!(
            check(ELF, Some("image/png")),
            Err(KindError::Unsupported(_))
        ));
        assert!(matches!(
            check(b"<html>hi</html>", Some("text/html")),
            Err(KindError::Unsupported(_))
        ));
        assert!(matches!(
            check(b"\x00\x01\x02\x03", None),
            Err(KindError::Unsupported(_))
        ));
    }
}
