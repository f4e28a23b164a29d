//! Guided lessons: data, one JSON file per lesson under `web/lessons/`, read by the
//! page's Lessons view and checked by the tests (`tests/lessons.rs` validates every
//! file; the end-to-end test runs every lesson in the browser and answers each question
//! with the file's expected answer).
//!
//! A lesson is a title, a goal and steps. A step explains (`text`), sets up (a built-in
//! experiment with a patch, the view to open, the controls to lock and the panels to
//! hide), runs (starts the view's experiment), points at a result (a CSS selector the
//! page highlights) and asks questions. A question's answer is **read off the page**: a
//! numeric question names the element whose first number is the answer (a student's
//! answer is right when it is within `tolerance` of it); a multiple-choice question is
//! either fixed (a question of understanding) or names an element for each option and
//! the largest or smallest is right. The file's `expected` answer is what the lesson's
//! seeded experiment shows: the end-to-end test fails when the page stops agreeing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::link::{MAX_CONTROLS, VIEWS};
use crate::spec::ExperimentSpec;

/// Most steps in a lesson.
pub const MAX_STEPS: usize = 24;
/// Most questions in a step.
pub const MAX_QUESTIONS: usize = 8;

/// A guided lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// Its id: lower-case letters, digits and `-` (the file's name without `.json`, and
    /// what a link's `guide` names).
    pub id: String,
    /// Its title.
    pub title: String,
    /// What the student will be able to say at the end (one or two sentences).
    pub goal: String,
    /// About how long it takes, in minutes (the experiments' time included).
    pub minutes: u32,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A short heading.
    pub title: String,
    /// What the step explains (plain text; blank lines separate paragraphs).
    pub text: String,
    /// The view the step opens (one of [`VIEWS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// The experiment the step runs in that view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Setup>,
    /// Settings keys locked while the step is shown (as a link's `lock`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lock: Vec<String>,
    /// Panels hidden while the step is shown (as a link's `hide`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<String>,
    /// The result the step points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Pointer>,
    /// The questions, answered from what the page shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
}

/// A built-in experiment ([`ExperimentSpec::builtin`]) with some of its fields changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The built-in experiment's name ([`crate::spec::BUILTIN_SPECS`]).
    pub builtin: String,
    /// Fields to change: a JSON pointer into the spec (`/training/duration`) and its
    /// new value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub patch: BTreeMap<String, serde_json::Value>,
}

/// A result on the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// A CSS selector.
    pub selector: String,
    /// What it is, as the step names it ("the exposure chart").
    pub label: String,
}

/// A question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Question {
    /// A number read off the page.
    Number {
        /// Unique within the lesson.
        id: String,
        /// The question.
        prompt: String,
        /// The element whose first number is the answer.
        read: String,
        /// How far from the page's number an answer may be and still be right.
        tolerance: f64,
        /// What the lesson's seeded experiment shows.
        expected: f64,
        /// A hint, shown after a wrong answer.
        hint: String,
    },
    /// One of several options.
    Choice {
        /// Unique within the lesson.
        id: String,
        /// The question.
        prompt: String,
        /// The options.
        options: Vec<Choice>,
        /// Which option is right.
        answer: ChoiceRule,
        /// The index of the option the lesson's seeded experiment makes right.
        expected: usize,
        /// A hint, shown after a wrong answer.
        hint: String,
    },
}

/// An option of a multiple-choice question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// What the student reads.
    pub label: String,
    /// The element whose first number is this option's value (for `largest` and
    /// `smallest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
}

/// Which option of a multiple-choice question is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChoiceRule {
    /// The option with the index `expected` (a question of understanding).
    Fixed,
    /// The option whose element shows the largest number.
    Largest,
    /// The option whose element shows the smallest number.
    Smallest,
}

/// Why a lesson file is not a lesson.
#[derive(Debug, Error, PartialEq)]
pub enum LessonError {
    /// Not the JSON of a lesson.
    #[error("not a lesson: {0}")]
    Json(String),
    /// A field is wrong.
    #[error("{at}: {message}")]
    Invalid {
        /// Where (`steps[2].questions[0]`).
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> LessonError {
    LessonError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

impl Setup {
    /// The experiment: the built-in spec with the patch applied, validated.
    pub fn spec(&self) -> Result<ExperimentSpec, String> {
        let base = ExperimentSpec::builtin(&self.builtin)
            .ok_or_else(|| format!("no built-in experiment is called {:?}", self.builtin))?;
        if self.patch.is_empty() {
            return Ok(base);
        }
        let mut v = serde_json::to_value(&base).map_err(|e| e.to_string())?;
        for (pointer, value) in &self.patch {
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = value.clone();
                continue;
            }
            // A section the built-in spec leaves out (`/extraction`): add it to its
            // parent object, as JSON Patch's "add" does.
            let (parent, key) = pointer
                .rsplit_once('/')
                .ok_or_else(|| format!("{pointer} is not a JSON pointer"))?;
            match v.pointer_mut(parent).and_then(|p| p.as_object_mut()) {
                Some(object) if !key.is_empty() => {
                    object.insert(key.to_string(), value.clone());
                }
                _ => return Err(format!("the spec has no field {pointer}")),
            }
        }
        let spec: ExperimentSpec =
            serde_json::from_value(v).map_err(|e| format!("the patched spec: {e}"))?;
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

impl Question {
    /// Its id.
    pub fn id(&self) -> &str {
        match self {
            Question::Number { id, .. } | Question::Choice { id, .. } => id,
        }
    }

    /// The question's text.
    pub fn prompt(&self) -> &str {
        match self {
            Question::Number { prompt, .. } | Question::Choice { prompt, .. } => prompt,
        }
    }

    /// Its hint.
    pub fn hint(&self) -> &str {
        match self {
            Question::Number { hint, .. } | Question::Choice { hint, .. } => hint,
        }
    }

    /// The selectors whose numbers decide the answer.
    pub fn reads(&self) -> Vec<&str> {
        match self {
            Question::Number { read, .. } => vec![read.as_str()],
            Question::Choice { options, .. } => {
                options.iter().filter_map(|o| o.read.as_deref()).collect()
            }
        }
    }

    /// The file's expected answer, as a student would type or pick it.
    pub fn expected(&self) -> Given {
        match self {
            Question::Number { expected, .. } => Given::Number(*expected),
            Question::Choice { expected, .. } => Given::Choice(*expected),
        }
    }

    /// Check `given` against what the page shows: `shown(selector)` is the first number
    /// of that element's text, `None` when the page does not show it.
    pub fn check(
        &self,
        given: &Given,
        shown: &dyn Fn(&str) -> Option<f64>,
    ) -> Result<Verdict, Unshown> {
        match (self, given) {
            (
                Question::Number {
                    read, tolerance, ..
                },
                Given::Number(x),
            ) => {
                let truth = shown(read).ok_or_else(|| Unshown(read.clone()))?;
                Ok(Verdict {
                    correct: x.is_finite() && (x - truth).abs() <= *tolerance,
                    truth: Given::Number(truth),
                })
            }
            (
                Question::Choice {
                    options,
                    answer,
                    expected,
                    ..
                },
                Given::Choice(i),
            ) => {
                let right = match answer {
                    ChoiceRule::Fixed => *expected,
                    rule => {
                        let mut values = Vec::with_capacity(options.len());
                        for o in options {
                            let sel = o.read.as_deref().unwrap_or_default();
                            values.push(shown(sel).ok_or_else(|| Unshown(sel.to_string()))?);
                        }
                        let pick = values.iter().enumerate().reduce(|best, cur| {
                            let better = match rule {
                                ChoiceRule::Largest => cur.1 > best.1,
                                _ => cur.1 < best.1,
                            };
                            if better { cur } else { best }
                        });
                        pick.map_or(0, |(i, _)| i)
                    }
                };
                Ok(Verdict {
                    correct: *i == right,
                    truth: Given::Choice(right),
                })
            }
            (_, _) => Ok(Verdict {
                correct: false,
                truth: given.clone(),
            }),
        }
    }
}

/// A student's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Given {
    /// A number.
    Number(f64),
    /// An option's index.
    Choice(usize),
}

/// The outcome of checking an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether it is right.
    pub correct: bool,
    /// The right answer, as the page shows it.
    pub truth: Given,
}

/// The page does not show the element a question reads (its experiment has not run).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the page does not show {0} yet")]
pub struct Unshown(pub String);

/// A student's answer as kept with the runs and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The question's id.
    pub question: String,
    /// What the student answered.
    pub given: Given,
    /// Whether it was right.
    pub correct: bool,
    /// The right answer, as the page showed it.
    pub truth: Given,
    /// How many times the student checked an answer to this question.
    pub tries: u32,
    /// The kept run the answer was read from, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// A student's progress through one lesson.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The lesson's id.
    pub lesson: String,
    /// The step shown last.
    pub step: usize,
    /// The student's name, for the file they hand in.
    #[serde(default)]
    pub student: String,
    /// The answers, by question id.
    pub answers: BTreeMap<String, Answer>,
}

impl Progress {
    /// How many questions are answered right.
    pub fn correct(&self) -> usize {
        self.answers.values().filter(|a| a.correct).count()
    }

    /// The answers as CSV (`question,answer,correct,page_value,tries,run`), in the
    /// lesson's order.
    pub fn csv(&self, lesson: &Lesson) -> String {
        let mut out = String::from("question,answer,correct,page_value,tries,run\n");
        let show = |g: &Given| match g {
            Given::Number(x) => format!("{x}"),
            Given::Choice(i) => format!("option {}", i + 1),
        };
        for q in lesson.questions() {
            if let Some(a) = self.answers.get(q.id()) {
                out.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    q.id(),
                    show(&a.given),
                    a.correct,
                    show(&a.truth),
                    a.tries,
                    a.run.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }
}

/// The first number in `text` ("exposure 13.29 bits" gives 13.29; "1,024" gives
/// 1024; "−0.5" with a minus sign gives -0.5); `None` when there is none.
pub fn first_number(text: &str) -> Option<f64> {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(|c| c.is_ascii_digit())?;
    let mut s = String::new();
    if start > 0 && matches!(chars[start - 1], '-' | '\u{2212}') {
        s.push('-');
    }
    let mut i = start;
    let mut seen_point = false;
    while i < chars.len() {
        let c = chars[i];
        let next_digit = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
        if c.is_ascii_digit() {
            s.push(c);
        } else if c == ',' && !seen_point && next_digit {
            // A thousands separator.
        } else if c == '.' && !seen_point && next_digit {
            seen_point = true;
            s.push(c);
        } else if matches!(c, 'e' | 'E') {
            let sign = chars.get(i + 1).copied();
            let (skip, digit_at) = match sign {
                Some('-' | '+') => (2, i + 2),
                _ => (1, i + 1),
            };
            if chars.get(digit_at).is_some_and(|d| d.is_ascii_digit()) {
                s.push('e');
                if skip == 2 {
                    s.push(chars[i + 1]);
                }
                i += skip;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            break;
        } else {
            break;
        }
        i += 1;
    }
    s.parse().ok()
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Lesson {
    /// Read and validate a lesson file.
    pub fn from_json(json: &str) -> Result<Lesson, LessonError> {
        let lesson: Lesson =
            serde_json::from_str(json).map_err(|e| LessonError::Json(e.to_string()))?;
        lesson.validate()?;
        Ok(lesson)
    }

    /// Every question, in order.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.steps.iter().flat_map(|s| s.questions.iter())
    }

    /// Check everything a file could get wrong: names, views, experiments, the
    /// questions' shapes and expected answers.
    pub fn validate(&self) -> Result<(), LessonError> {
        if !is_name(&self.id) {
            return Err(invalid("id", "use lower-case letters, digits and -"));
        }
        if self.title.trim().is_empty() || self.goal.trim().is_empty() {
            return Err(invalid("title", "a lesson needs a title and a goal"));
        }
        if !(1..=180).contains(&self.minutes) {
            return Err(invalid("minutes", "between 1 and 180"));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(invalid("steps", format!("1 to {MAX_STEPS} steps")));
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut ran = false;
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if step.title.trim().is_empty() || step.text.trim().is_empty() {
                return Err(invalid(at, "a step needs a title and a text"));
            }
            if let Some(v) = &step.view
                && !VIEWS.contains(&v.as_str())
            {
                return Err(invalid(
                    format!("{at}.view"),
                    format!("{v:?} is not a view ({})", VIEWS.join(", ")),
                ));
            }
            if let Some(setup) = &step.run {
                if step.view.is_none() {
                    return Err(invalid(format!("{at}.run"), "a run needs a view"));
                }
                setup.spec().map_err(|e| invalid(format!("{at}.run"), e))?;
                ran = true;
            }
            for (name, list) in [("lock", &step.lock), ("hide", &step.hide)] {
                if list.len() > MAX_CONTROLS || list.iter().any(|c| c.trim().is_empty()) {
                    return Err(invalid(
                        format!("{at}.{name}"),
                        format!("at most {MAX_CONTROLS} names, none empty"),
                    ));
                }
            }
            if let Some(p) = &step.point
                && (p.selector.trim().is_empty() || p.label.trim().is_empty())
            {
                return Err(invalid(format!("{at}.point"), "a selector and a label"));
            }
            if step.questions.len() > MAX_QUESTIONS {
                return Err(invalid(
                    format!("{at}.questions"),
                    format!("at most {MAX_QUESTIONS}"),
                ));
            }
            for (j, q) in step.questions.iter().enumerate() {
                let at = format!("{at}.questions[{j}]");
                if !is_name(q.id()) || !ids.insert(q.id().to_string()) {
                    return Err(invalid(at, format!("id {:?} is not a new name", q.id())));
                }
                if q.prompt().trim().is_empty() || q.hint().trim().is_empty() {
                    return Err(invalid(at, "a question needs a prompt and a hint"));
                }
                match q {
                    Question::Number {
                        read,
                        tolerance,
                        expected,
                        ..
                    } => {
                        if read.trim().is_empty() {
                            return Err(invalid(at, "read names no element"));
                        }
                        if !(tolerance.is_finite() && *tolerance > 0.0 && expected.is_finite()) {
                            return Err(invalid(at, "tolerance > 0 and a finite expected"));
                        }
                    }
                    Question::Choice {
                        options,
                        answer,
                        expected,
                        ..
                    } => {
                        if options.len() < 2 || *expected >= options.len() {
                            return Err(invalid(
                                at,
                                "two or more options, and expected one of them",
                            ));
                        }
                        let reads = options.iter().filter(|o| o.read.is_some()).count();
                        match answer {
                            ChoiceRule::Fixed if reads > 0 => {
                                return Err(invalid(at, "a fixed answer reads nothing"));
                            }
                            ChoiceRule::Largest | ChoiceRule::Smallest
                                if reads != options.len() =>
                            {
                                return Err(invalid(at, "every option needs read"));
                            }
                            _ => {}
                        }
                    }
                }
                if !q.reads().is_empty() && !ran {
                    return Err(invalid(
                        at,
                        "it reads a result, but no step before it runs an experiment",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}
