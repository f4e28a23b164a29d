//! Checks on uploaded files before they become a corpus: size cap, emptiness, binary
//! content and UTF-8. A rejected upload gets a message that names the problem and
//! changes nothing else.

use thiserror::Error;

use crate::spec::limits;

/// Why an upload was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UploadError {
    /// The file is empty or only whitespace.
    #[error("“{name}” is empty: there is no text to train on")]
    Empty {
        /// File name.
        name: String,
    },
    /// Over the size cap.
    #[error("“{name}” is {size} bytes; the limit is {cap} bytes ({cap_mib:.0} MiB). Upload a smaller part of it.", cap_mib = *cap as f64 / 1048576.0)]
    TooLarge {
        /// File name.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// Binary data (NUL bytes or many control characters).
    #[error(
        "“{name}” looks like a binary file, not plain text (byte {offset} is a control character). Upload a .txt file."
    )]
    Binary {
        /// File name.
        name: String,
        /// First offending byte.
        offset: usize,
    },
    /// Not valid UTF-8.
    #[error(
        "“{name}” is not UTF-8 text (invalid byte at position {offset}). Save it as UTF-8 and upload it again."
    )]
    NotUtf8 {
        /// File name.
        name: String,
        /// Where decoding failed.
        offset: usize,
    },
}

/// The size cap for uploaded text.
pub const UPLOAD_CAP: u64 = limits::TEXT_BYTES as u64;

/// Refuse a file by its size alone, before reading it.
pub fn check_size(name: &str, size: u64) -> Result<(), UploadError> {
    if size > UPLOAD_CAP {
        return Err(UploadError::TooLarge {
            name: name.to_string(),
            size,
            cap: UPLOAD_CAP,
        });
    }
    Ok(())
}

/// Decode an uploaded file as text, or say why it cannot be used.
pub fn decode_text(name: &str, bytes: &[u8]) -> Result<String, UploadError> {
    check_size(name, bytes.len() as u64)?;
    // Control bytes mark binary data whatever the encoding, so look for them first: a
    // PNG or a zip is "binary", a Latin-1 text file is "not UTF-8".
    if let Some(offset) = first_binary_byte(bytes) {
        return Err(UploadError::Binary {
            name: name.to_string(),
            offset,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| UploadError::NotUtf8 {
        name: name.to_string(),
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(UploadError::Empty {
            name: name.to_string(),
        });
    }
    Ok(text.replace("\r\n", "\n"))
}

/// Control bytes other than tab, newline, carriage return and form feed mark binary data.
fn first_binary_byte(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_and_crlf_is_normalised() {
        assert_eq!(decode_text("a.txt", b"one\r\ntwo\n").unwrap(), "one\ntwo\n");
        assert_eq!(
            decode_text("a.txt", "\u{feff}héllo".as_bytes()).unwrap(),
            "héllo"
        );
    }

    #[test]
    fn each_bad_file_gets_its_own_message() {
        assert!(matches!(
            decode_text("e.txt", b""),
            Err(UploadError::Empty { .. })
        ));
        assert!(matches!(
            decode_text("e.txt", b" \n\t "),
            Err(UploadError::Empty { .. })
        ));
        assert_eq!(
            decode_text("b.bin", b"PK\x03\x04abc"),
            Err(UploadError::Binary {
                name: "b.bin".into(),
                offset: 2
            })
        );
        assert!(matches!(
            decode_text("i.png", b"\x89PNG\r\n\x1a\n\0\0"),
            Err(UploadError::Binary { offset: 6, .. })
        ));
        assert_eq!(
            decode_text("l.txt", b"caf\xe9 au lait"),
            Err(UploadError::NotUtf8 {
                name: "l.txt".into(),
                offset: 3
            })
        );
        let big = vec![b'a'; UPLOAD_CAP as usize + 1];
        assert!(matches!(
            decode_text("big.txt", &big),
            Err(UploadError::TooLarge { .. })
        ));
        let msg = decode_text("l.txt", b"caf\xe9").unwrap_err().to_string();
        assert!(msg.contains("not UTF-8"), "{msg}");
    }
}
