#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The lesson files under `web/lessons/`: every one is a valid lesson whose id is its
//! file name, the page builds every one in (`web/src/lessons/mod.rs`), there are lessons
//! for every analysis, and every element a lesson reads or points at is one the page's
//! code names. (The end-to-end test `tests/e2e/lessons.test.mjs` runs them.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mnemo_core::lesson::Lesson;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lessons() -> Vec<(String, Lesson)> {
    let dir = root().join("web/lessons");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let lesson =
                Lesson::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                lesson.id,
                stem,
                "{}: the id is the file's name",
                path.display()
            );
            out.push((stem, lesson));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every Rust source of the page, concatenated.
fn web_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut s = String::new();
    walk(&root().join("web/src"), &mut s);
    s
}

#[test]
fn every_lesson_file_is_valid_and_built_into_the_page() {
    let all = lessons();
    assert!(all.len() >= 8, "a lesson per analysis: {}", all.len());
    let catalog = std::fs::read_to_string(root().join("web/src/lessons/mod.rs")).unwrap();
    for (stem, _) in &all {
        let line = format!("include_str!(\"../../lessons/{stem}.json\")");
        assert!(
            catalog.contains(&line),
            "web/src/lessons/mod.rs lacks {line}"
        );
    }
    let listed = catalog.matches("include_str!(\"../../lessons/").count();
    assert_eq!(listed, all.len(), "the catalog lists exactly the files");
}

#[test]
fn the_lessons_cover_every_analysis() {
    let views: BTreeSet<String> = lessons()
        .iter()
        .flat_map(|(_, l)| l.steps.iter().filter_map(|s| s.view.clone()))
        .collect();
    for view in [
        "train",
        "extraction",
        "profile",
        "counterfactual",
        "softprompt",
        "influence",
        "mitigation",
        "geometry",
        "exposure",
    ] {
        assert!(views.contains(view), "no lesson opens the {view} view");
    }
}

#[test]
fn every_element_a_lesson_reads_is_named_by_the_page() {
    let sources = web_sources();
    for (stem, lesson) in lessons() {
        let mut selectors: Vec<String> = lesson
            .steps
            .iter()
            .filter_map(|s| s.point.as_ref().map(|p| p.selector.clone()))
            .collect();
        for q in lesson.questions() {
            selectors.extend(q.reads().iter().map(|s| s.to_string()));
        }
        for sel in selectors {
            for id in sel.split('#').skip(1) {
                let id: String = id
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                assert!(
                    sources.contains(&format!("\"{id}\"")),
                    "{stem}: no element of the page has the id {id} (in {sel})"
                );
            }
        }
    }
}
