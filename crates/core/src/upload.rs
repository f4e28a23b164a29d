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

/// A table upload (CSV or JSON lines) that cannot be read, naming the line.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("“{name}”, line {line}: {problem}")]
pub struct RowError {
    /// File name.
    pub name: String,
    /// 1-based line of the file.
    pub line: u64,
    /// What is wrong there.
    pub problem: String,
}

/// What an upload holds once read: the texts, one per line, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedTexts {
    /// The text to train on. For tables, one record per line (line breaks inside a
    /// record become spaces), to be split by lines.
    pub text: String,
    /// `Some(records)` when the file was a table (`.csv`, `.jsonl`, `.ndjson`).
    pub records: Option<usize>,
}

/// Read a decoded upload by its file type: `.csv` needs a header with a `text` column;
/// `.jsonl`/`.ndjson` need one JSON object with a string `text` per non-empty line;
/// anything else is plain text. A bad row is an error naming its line, and nothing of
/// the file is used.
pub fn read_texts(name: &str, text: &str) -> Result<UploadedTexts, RowError> {
    let lower = name.to_ascii_lowercase();
    let err = |line: u64, problem: String| RowError {
        name: name.to_string(),
        line,
        problem,
    };
    let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    if lower.ends_with(".csv") {
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header = r
            .headers()
            .map_err(|e| err(1, format!("the header cannot be read: {e}")))?
            .clone();
        let col = header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case("text"))
            .ok_or_else(|| {
                err(
                    1,
                    format!(
                        "no “text” column (the columns are: {})",
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
        for record in r.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} fields where the header has {expected_len}")
                    }
                    _ => e.to_string(),
                };
                err(line, problem)
            })?;
            let t = flat(record.get(col).unwrap_or_default());
            if !t.is_empty() {
                out.push(t);
            }
        }
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| err(n, format!("not JSON ({e})")))?;
            let t = v
                .get("text")
                .ok_or_else(|| err(n, "no “text” field".into()))?
                .as_str()
                .ok_or_else(|| err(n, "“text” is not a string".into()))?;
            let t = flat(t);
            if !t.is_empty() {
                out.push(t);
            }
        }
    } else {
        return Ok(UploadedTexts {
            text: text.to_string(),
            records: None,
        });
    }
    if out.is_empty() {
        return Err(err(1, "no record has any text".into()));
    }
    Ok(UploadedTexts {
        records: Some(out.len()),
        text: out.join("\n") + "\n",
    })
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
    fn tables_give_one_text_per_record_and_bad_rows_name_their_line() {
        let t = read_texts(
            "d.csv",
            "id,text\n1,\"first, with comma\"\n2,\"two\nlines\"\n3,\n",
        )
        .unwrap();
        assert_eq!(
            t,
            UploadedTexts {
                text: "first, with comma\ntwo lines\n".into(),
                records: Some(2)
            }
        );
        let e = read_texts("d.csv", "id,text\n1,a\n2,b,extra\n").unwrap_err();
        assert_eq!(
            (e.line, e.problem.as_str()),
            (3, "3 fields where the header has 2")
        );
        let e = read_texts("d.csv", "id,body\n1,a\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("no “text” column (the columns are: id, body)"),
            "{e}"
        );
        let t = read_texts(
            "d.JSONL",
            "{\"text\": \"a b\"}\n\n{\"text\": \"c\", \"x\": 1}\n",
        )
        .unwrap();
        assert_eq!(
            t,
            UploadedTexts {
                text: "a b\nc\n".into(),
                records: Some(2)
            }
        );
        let e = read_texts("d.jsonl", "{\"text\": \"a\"}\n{oops\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.problem.starts_with("not JSON"), "{e}");
        assert_eq!(
            read_texts("d.jsonl", "{\"txt\": 1}").unwrap_err().problem,
            "no “text” field"
        );
        assert_eq!(
            read_texts("d.jsonl", "{\"text\": 1}").unwrap_err().problem,
            "“text” is not a string"
        );
        assert_eq!(
            read_texts("d.csv", "text\n\n").unwrap_err().problem,
            "no record has any text"
        );
        assert_eq!(
            read_texts("notes.txt", "a,b\n").unwrap(),
            UploadedTexts {
                text: "a,b\n".into(),
                records: None
            }
        );
    }

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
