//! The lesson format's unit tests.
use super::*;

#[test]
fn first_numbers_of_what_the_page_shows() {
    assert_eq!(first_number("13.29 bits"), Some(13.29));
    assert_eq!(first_number("exposure: 0.36"), Some(0.36));
    assert_eq!(first_number("1,024 candidates"), Some(1024.0));
    assert_eq!(first_number("84.4%"), Some(84.4));
    assert_eq!(first_number("\u{2212}0.5"), Some(-0.5));
    assert_eq!(first_number("-2"), Some(-2.0));
    assert_eq!(first_number("rank 1 of 10,000"), Some(1.0));
    assert_eq!(first_number("1.5e-3 s"), Some(1.5e-3));
    assert_eq!(first_number("2e"), Some(2.0));
    assert_eq!(first_number("x32."), Some(32.0));
    assert_eq!(first_number("none"), None);
    assert_eq!(first_number(""), None);
}

fn number(tol: f64) -> Question {
    Question::Number {
        id: "q".into(),
        prompt: "p".into(),
        read: "#a".into(),
        tolerance: tol,
        expected: 3.0,
        hint: "h".into(),
    }
}

fn choice(answer: ChoiceRule, expected: usize) -> Question {
    let read = |s: &str| (answer != ChoiceRule::Fixed).then(|| s.to_string());
    Question::Choice {
        id: "c".into(),
        prompt: "p".into(),
        options: vec![
            Choice {
                label: "a".into(),
                read: read("#a"),
            },
            Choice {
                label: "b".into(),
                read: read("#b"),
            },
            Choice {
                label: "c".into(),
                read: read("#c"),
            },
        ],
        answer,
        expected,
        hint: "h".into(),
    }
}

fn page(sel: &str) -> Option<f64> {
    match sel {
        "#a" => Some(3.04),
        "#b" => Some(-1.0),
        "#c" => Some(7.5),
        _ => None,
    }
}

#[test]
fn numbers_are_right_within_the_tolerance_of_what_the_page_shows() {
    let q = number(0.05);
    let v = q.check(&Given::Number(3.0), &page).unwrap();
    assert!(v.correct);
    assert_eq!(v.truth, Given::Number(3.04));
    assert!(!q.check(&Given::Number(3.1), &page).unwrap().correct);
    assert!(!q.check(&Given::Number(f64::NAN), &page).unwrap().correct);
    assert!(
        number(0.01)
            .check(&Given::Number(3.0), &page)
            .is_ok_and(|v| !v.correct)
    );
    let mut missing = number(1.0);
    if let Question::Number { read, .. } = &mut missing {
        *read = "#zz".into();
    }
    assert_eq!(
        missing.check(&Given::Number(3.0), &page),
        Err(Unshown("#zz".into()))
    );
}

#[test]
fn choices_are_read_off_the_page_or_fixed() {
    let largest = choice(ChoiceRule::Largest, 2);
    assert!(largest.check(&Given::Choice(2), &page).unwrap().correct);
    assert!(!largest.check(&Given::Choice(0), &page).unwrap().correct);
    let smallest = choice(ChoiceRule::Smallest, 1);
    assert_eq!(
        smallest.check(&Given::Choice(0), &page).unwrap().truth,
        Given::Choice(1)
    );
    let fixed = choice(ChoiceRule::Fixed, 0);
    assert!(fixed.check(&Given::Choice(0), &|_| None).unwrap().correct);
    assert!(!fixed.check(&Given::Choice(1), &|_| None).unwrap().correct);
    // A number given to a choice is wrong, never a panic.
    assert!(!fixed.check(&Given::Number(0.0), &page).unwrap().correct);
}

fn lesson(steps: serde_json::Value) -> Result<Lesson, LessonError> {
    Lesson::from_json(
        &serde_json::json!({
            "id": "t", "title": "T", "goal": "G", "minutes": 5, "steps": steps
        })
        .to_string(),
    )
}

#[test]
fn bad_lessons_are_refused_naming_the_field() {
    let run = serde_json::json!({"builtin": "canary"});
    let q = serde_json::json!({"kind": "number", "id": "a", "prompt": "p", "read": "#x",
                              "tolerance": 0.1, "expected": 1.0, "hint": "h"});
    assert!(
        lesson(
            serde_json::json!([{"title": "a", "text": "b", "view": "exposure",
                                       "run": run, "questions": [q]}])
        )
        .is_ok()
    );
    let err = |steps| match lesson(steps) {
        Err(LessonError::Invalid { at, .. }) => at,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(serde_json::json!([{"title": "a", "text": "b", "questions": [q]}])),
        "steps[0].questions[0]",
        "a question reading a result needs a run before it"
    );
    assert_eq!(
        err(serde_json::json!([{"title": "a", "text": "b", "view": "nope"}])),
        "steps[0].view"
    );
    assert_eq!(
        err(
            serde_json::json!([{"title": "a", "text": "b", "view": "train",
                                "run": {"builtin": "nope"}}])
        ),
        "steps[0].run"
    );
    assert_eq!(
        err(
            serde_json::json!([{"title": "a", "text": "b", "view": "train",
                                "run": {"builtin": "demo", "patch": {"/training/batch_size": 0}}}])
        ),
        "steps[0].run"
    );
    assert_eq!(
        err(
            serde_json::json!([{"title": "a", "text": "b", "view": "train",
                                "run": {"builtin": "demo", "patch": {"/no/such": 1}}}])
        ),
        "steps[0].run"
    );
    assert_eq!(
        err(
            serde_json::json!([{"title": "a", "text": "b", "view": "train", "run": run,
                                "questions": [q, q]}])
        ),
        "steps[0].questions[1]",
        "ids are unique"
    );
    let c = serde_json::json!({"kind": "choice", "id": "c", "prompt": "p", "hint": "h",
        "options": [{"label": "x"}, {"label": "y"}], "answer": "fixed", "expected": 2});
    assert_eq!(
        err(serde_json::json!([{"title": "a", "text": "b", "questions": [c]}])),
        "steps[0].questions[0]"
    );
    let c = serde_json::json!({"kind": "choice", "id": "c", "prompt": "p", "hint": "h",
        "options": [{"label": "x", "read": "#x"}, {"label": "y"}], "answer": "largest",
        "expected": 0});
    assert_eq!(
        err(
            serde_json::json!([{"title": "a", "text": "b", "view": "train", "run": run,
                                "questions": [c]}])
        ),
        "steps[0].questions[0]"
    );
    assert!(matches!(
        lesson(serde_json::json!("x")),
        Err(LessonError::Json(_))
    ));
}

#[test]
fn patches_change_exactly_the_named_fields() {
    let setup = Setup {
        builtin: "canary".into(),
        patch: [(
            "/training/duration".to_string(),
            serde_json::json!({"epochs": 5}),
        )]
        .into(),
    };
    let spec = setup.spec().unwrap();
    let mut want = ExperimentSpec::canary_demo();
    want.training.duration = crate::spec::Duration::Epochs(5);
    assert_eq!(spec, want);
    // A section the built-in spec has not is added.
    let setup = Setup {
        builtin: "demo".into(),
        patch: [(
            "/extraction".to_string(),
            serde_json::json!({"prefix": 12, "suffix": 40}),
        )]
        .into(),
    };
    let ex = setup.spec().unwrap().extraction.unwrap();
    assert_eq!((ex.prefix, ex.suffix), (12, 40));
}
