//! The facts corpus: invented one-line biographies, and the word lists the records
//! corpus draws from too.

use rand::Rng;

use crate::rng::{self, Stream};

pub(super) const FIRST: &[&str] = &[
    "Ada", "Bram", "Cleo", "Dara", "Emil", "Faye", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lena",
    "Milo", "Nora", "Otto", "Pia", "Quin", "Rosa", "Sami", "Tova", "Uma", "Vik", "Wren", "Yara",
];
pub(super) const LAST: &[&str] = &[
    "Quill", "Marsh", "Vane", "Holt", "Brisk", "Fenn", "Lark", "Moss", "Reed", "Sol", "Thorn",
    "Wick", "Ash", "Birch", "Cove", "Dale",
];
pub(super) const CITIES: &[&str] = &[
    "Leeds", "Porto", "Lyon", "Turku", "Graz", "Cork", "Bergen", "Split", "Gdansk", "Basel",
    "Ghent", "Brno", "Lille", "Bari", "Kiel", "Oulu",
];
pub(super) const ANIMALS: &[&str] = &[
    "owl", "cat", "goat", "hen", "fox", "newt", "crow", "mole", "duck", "frog", "bee", "yak",
];
pub(super) const COLOURS: &[&str] = &[
    "teal", "amber", "plum", "jade", "rust", "navy", "lime", "ochre", "rose", "slate",
];

pub(super) fn pick<'a>(rng: &mut impl Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// Invented one-line biographies. Their details are random, so a model can only
/// reproduce them by memorising them: a good first corpus for the analyses.
pub fn facts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = rng::stream(seed, Stream::Data);
    (0..n)
        .map(|_| {
            let count = rng.random_range(2..10);
            format!(
                "{} {} lives in {}, keeps {} {}s and loves {}.",
                pick(&mut rng, FIRST),
                pick(&mut rng, LAST),
                pick(&mut rng, CITIES),
                count,
                pick(&mut rng, ANIMALS),
                pick(&mut rng, COLOURS)
            )
        })
        .collect()
}
