//! Feeds arbitrary bytes to every decoder in `values` and checks that what decodes re-encodes to the
//! same thing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use values::json::{from_clean_json, from_encoded_json, to_clean_json, to_encoded_json};
use values::{DocumentId, Format};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // Decode accepts only canonical strings, so an accepted one must re-encode to itself.
        if let Ok(id) = DocumentId::decode(text) {
            assert_eq!(id.encode(), text);
        }
    }

    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };

    if let Ok(value) = from_encoded_json(&json) {
        let again = from_encoded_json(&to_encoded_json(&value)).expect("re-encoded value must decode");
        assert_eq!(again, value);
        // Also through text, as it travels on the wire.
        let text = Format::Encoded.encode_to_string(&value);
        let reparsed: serde_json::Value = serde_json::from_str(&text).expect("encoder wrote valid JSON");
        assert_eq!(from_encoded_json(&reparsed).expect("re-parsed value must decode"), value);
    }

    if let Ok(value) = from_clean_json(&json) {
        // Clean JSON is lossy (NaN becomes "NaN"), but one pass must reach a fixed point.
        let once = to_clean_json(&value);
        let value2 = from_clean_json(&once).expect("clean output must decode");
        assert_eq!(to_clean_json(&value2), once);
        // Every clean-decoded value is also a valid value for the lossless format.
        assert_eq!(from_encoded_json(&to_encoded_json(&value)).expect("encodes losslessly"), value);
    }
});
