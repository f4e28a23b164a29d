//! Reading a picked or dropped file: in chunks of 1 MiB, refusing it as soon as it
//! passes the cap, then decoded and checked by `mnemo_core::upload`.

use mnemo_core::upload::{UPLOAD_CAP, check_size, decode_text};
use wasm_bindgen_futures::JsFuture;
use web_sys::File;

const CHUNK: f64 = 1024.0 * 1024.0;

/// The file's text, or the message that says why it cannot be used.
pub async fn read_text(file: &File) -> Result<String, String> {
    let name = file.name();
    check_size(&name, file.size() as u64).map_err(|e| e.to_string())?;
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
        check_size(&name, bytes.len() as u64).map_err(|e| e.to_string())?;
        at += CHUNK;
    }
    debug_assert!(bytes.len() as u64 <= UPLOAD_CAP);
    decode_text(&name, &bytes).map_err(|e| e.to_string())
}
