//! The records corpus: invented records of four kinds, each trained behind its kind's
//! source line, a *hidden training context* (METHODS.md section 3). The source line is
//! part of what the model is trained on but never part of an extraction pair: an attacker
//! knows a record's text, not the header it was filed under.

use rand::Rng;

use crate::rng::{self, Stream};

use super::facts::{ANIMALS, CITIES, COLOURS, FIRST, LAST, pick};

/// The source line (hidden context) of each kind, in kind order.
pub const RECORD_HEADERS: [&str; 4] = [
    "Parish roll:\n",
    "Ship's log:\n",
    "Club list:\n",
    "Clinic card:\n",
];

/// One invented record: its kind (an index into [`RECORD_HEADERS`]) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index into [`RECORD_HEADERS`].
    pub kind: usize,
    /// The record's own text (without its header).
    pub text: String,
}

impl Record {
    /// The source line it is trained behind.
    pub fn header(&self) -> &'static str {
        RECORD_HEADERS[self.kind]
    }
}

/// `n` invented records, kinds in turn (record `i` is of kind `i mod 4`). Each kind draws
/// first names from its own quarter of the name list and writes its own sentence, so the
/// kind can be told from a record's first words, while the details (surname, city,
/// count, animal, colour) are random and can only be reproduced by memorisation.
pub fn records(n: usize, seed: u64) -> Vec<Record> {
    let mut rng = rng::stream(seed, Stream::Data);
    let per_kind = FIRST.len() / RECORD_HEADERS.len();
    (0..n)
        .map(|i| {
            let kind = i % RECORD_HEADERS.len();
            let first = FIRST[kind * per_kind + rng.random_range(0..per_kind)];
            let count = rng.random_range(2..10);
            let (last, city, animal, colour) = (
                pick(&mut rng, LAST),
                pick(&mut rng, CITIES),
                pick(&mut rng, ANIMALS),
                pick(&mut rng, COLOURS),
            );
            let text = match kind {
                0 => format!("{first} {last} of {city}, wed in {colour}, {count} {animal}s."),
                1 => format!("{first} {last} sailed to {city} with {count} {animal}s, {colour}."),
                2 => format!("{first} {last}, {city} branch, {count} {animal}s, {colour} tie."),
                _ => format!("{first} {last} from {city}: {count} {animal} bites, {colour} rash."),
            };
            Record { kind, text }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_take_turns_and_names_come_from_their_kinds_quarter() {
        let r = records(40, 7);
        assert_eq!(r.len(), 40);
        for (i, rec) in r.iter().enumerate() {
            assert_eq!(rec.kind, i % 4);
            let first = rec.text.split(' ').next().unwrap();
            let at = FIRST.iter().position(|f| *f == first).unwrap();
            assert_eq!(at / 6, rec.kind, "{first} in {}", rec.text);
        }
        assert_eq!(records(40, 7), r, "seeded");
        assert_ne!(records(40, 8), r);
        assert_eq!(r[1].header(), "Ship's log:\n");
    }
}
