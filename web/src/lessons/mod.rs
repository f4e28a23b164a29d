//! The guided lessons: the files under `web/lessons/` (one lesson each, the format of
//! `mnemo_core::lesson`), built into the page, and the guide that walks a student
//! through one of them ([`guide::Guide`]). The Lessons view lists them and holds the
//! teacher's link builder.

use std::sync::OnceLock;

use mnemo_core::lesson::Lesson;

pub mod guide;

/// The lesson files, in the order the Lessons view lists them. `tests/lessons.rs` (in
/// mnemo-core) checks that every file under `web/lessons/` is here and valid.
const FILES: [(&str, &str); 8] = [
    (
        "memorisation",
        include_str!("../../lessons/memorisation.json"),
    ),
    ("profiles", include_str!("../../lessons/profiles.json")),
    (
        "counterfactual",
        include_str!("../../lessons/counterfactual.json"),
    ),
    (
        "soft-prompts",
        include_str!("../../lessons/soft-prompts.json"),
    ),
    ("influence", include_str!("../../lessons/influence.json")),
    ("unlearning", include_str!("../../lessons/unlearning.json")),
    ("geometry", include_str!("../../lessons/geometry.json")),
    ("canaries", include_str!("../../lessons/canaries.json")),
];

/// Every lesson that reads (a file that does not is left out and named in the console:
/// the native tests refuse such a file, so this does not happen in a release).
pub fn all() -> &'static [Lesson] {
    static ALL: OnceLock<Vec<Lesson>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .filter_map(|(name, json)| match Lesson::from_json(json) {
                Ok(l) => Some(l),
                Err(e) => {
                    web_sys::console::error_1(&format!("lesson {name}: {e}").into());
                    None
                }
            })
            .collect()
    })
}

/// The lesson with this id.
pub fn find(id: &str) -> Option<&'static Lesson> {
    all().iter().find(|l| l.id == id)
}
