//! Offer a file to the user: a Blob, an object URL and a click on a temporary link.

use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, Url};

/// Download `contents` as `filename` with the MIME type `mime`.
pub fn download_text(filename: &str, mime: &str, contents: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&contents.into());
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let blob =
        Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(|e| format!("{e:?}"))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let result = download_url(filename, &url);
    let _ = Url::revoke_object_url(&url);
    result
}

/// Download what `url` points to (an object or data URL) as `filename`.
pub fn download_url(filename: &str, url: &str) -> Result<(), String> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| format!("{e:?}"))?
        .dyn_into()
        .map_err(|_| "not an anchor")?;
    a.set_href(url);
    a.set_download(filename);
    a.click();
    Ok(())
}

/// Download `bytes` as `filename` with the MIME type `mime`.
pub fn download_bytes(filename: &str, mime: &str, bytes: &[u8]) -> Result<(), String> {
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &opts)
        .map_err(|e| format!("{e:?}"))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let result = download_url(filename, &url);
    let _ = Url::revoke_object_url(&url);
    result
}

/// Download a drawn chart as a PNG (`None`: the chart is not on the page yet).
pub fn download_canvas(
    canvas: Option<web_sys::HtmlCanvasElement>,
    filename: &str,
) -> Result<(), String> {
    let canvas = canvas.ok_or("no chart yet")?;
    download_url(
        filename,
        &canvas.to_data_url().map_err(|e| format!("{e:?}"))?,
    )
}

/// Download the table `name` of `tables` (an analysis's CSV tables, as
/// `mnemo_measures::export` makes them) as a CSV file of that name.
pub fn download_table(
    tables: Result<Vec<(&'static str, String)>, impl std::fmt::Display>,
    name: &str,
) -> Result<(), String> {
    let tables = tables.map_err(|e| e.to_string())?;
    let (_, text) = tables
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("no table {name}"))?;
    download_text(name, "text/csv", text)
}
