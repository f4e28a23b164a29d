//! Reading a picked or dropped file: in chunks of 1 MiB, refusing it as soon as it
//! passes the cap, then decoded and checked by `mnemo_core::upload`.

use mnemo_core::upload::{UPLOAD_CAP, check_size, decode_text};
use wasm_bindgen_futures::JsFuture;
use web_sys::File;

const CHUNK: f64 = 1024.0 * 1024.0;

/// The largest weights file accepted.
pub const WEIGHTS_CAP: u64 = 256 * 1024 * 1024;

/// The file's text, or the message that says why it cannot be used.
pub async fn read_text(file: &File) -> Result<String, String> {
    let name = file.name();
    let cap = |n: u64| check_size(&name, n).map_err(|e| e.to_string());
    let bytes = read_bytes(file, cap).await?;
    debug_assert!(bytes.len() as u64 <= UPLOAD_CAP);
    decode_text(&name, &bytes).map_err(|e| e.to_string())
}

/// A weights file's bytes, up to [`WEIGHTS_CAP`].
pub async fn read_weights(file: &File) -> Result<Vec<u8>, String> {
    let name = file.name();
    read_bytes(file, |n| {
        if n > WEIGHTS_CAP {
            Err(format!(
                "“{name}” is {n} bytes; weights files are at most {WEIGHTS_CAP} bytes"
            ))
        } else {
            Ok(())
        }
    })
    .await
}

/// The largest JSON file of a Hugging Face folder accepted (Pythia's tokenizer.json is
/// about 2 MiB).
pub const HF_JSON_CAP: u64 = 16 * 1024 * 1024;

/// A Hugging Face folder's `config.json` or `tokenizer.json`, as text.
pub async fn read_json(file: &File) -> Result<String, String> {
    let name = file.name();
    let bytes = read_bytes(file, |n| {
        if n > HF_JSON_CAP {
            Err(format!(
                "“{name}” is {n} bytes; JSON files are at most {HF_JSON_CAP} bytes"
            ))
        } else {
            Ok(())
        }
    })
    .await?;
    String::from_utf8(bytes).map_err(|_| format!("“{name}” is not UTF-8 text"))
}

/// Read `file` in chunks, asking `cap` about the size before and while reading.
async fn read_bytes(
    file: &File,
    cap: impl Fn(u64) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let name = file.name();
    cap(file.size() as u64)?;
    let size = file.size();
    let mut bytes: Vec<u8> = Vec::with_capacity(size as usize);
    let mut at = 0.0;
    while at < size {
        let blob = file
            .slice_with_f64_and_f64(at, (at + CHUNK).min(size))
            .map_err(|e| format!("“{name}” could not be read: {e:?}"))?;
        let buf = JsFuture::from(blob.array_buffer())
            .await
            .map_err(|e| format!("“{name}” could not be read: {e:?}"))?;
        bytes.extend(js_sys::Uint8Array::new(&buf).to_vec());
        // The size is checked up front, but a file may grow while it is read.
        cap(bytes.len() as u64)?;
        at += CHUNK;
    }
    Ok(bytes)
}
