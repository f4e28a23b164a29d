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

use crate::spec::ExperimentSpec;

mod answer;
mod validate;

pub use answer::{Answer, Progress, first_number};

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

#[cfg(test)]
mod tests;
