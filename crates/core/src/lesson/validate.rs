//! Reading and checking a lesson file: names, views, experiments, the questions'
//! shapes and expected answers.

use super::{ChoiceRule, Lesson, LessonError, MAX_QUESTIONS, MAX_STEPS, Question, invalid};
use crate::link::{MAX_CONTROLS, VIEWS};

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
