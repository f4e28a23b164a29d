//! What the page reads and keeps: the first number of an element's text, a student's
//! answers and their progress through a lesson (CSV for a teacher).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Given, Lesson};

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
