//! Cutting text into instances, and the held-out split.

use std::collections::HashMap;

use super::{Instance, InstanceKind};
use crate::rng::{self, Stream};
use crate::spec::SplitMode;

/// Cut text into instances.
pub fn split_text(text: &str, mode: SplitMode) -> Vec<String> {
    match mode {
        SplitMode::Lines => text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        SplitMode::Paragraphs => {
            let mut out = Vec::new();
            let mut current: Vec<&str> = Vec::new();
            for line in text.lines() {
                if line.trim().is_empty() {
                    if !current.is_empty() {
                        out.push(current.join("\n"));
                        current.clear();
                    }
                } else {
                    current.push(line.trim_end());
                }
            }
            if !current.is_empty() {
                out.push(current.join("\n"));
            }
            out
        }
        SplitMode::Windows { length } => {
            let chars: Vec<char> = text.chars().collect();
            chars
                .chunks(length.max(1))
                .map(|c| c.iter().collect::<String>())
                .filter(|s| !s.trim().is_empty())
                .collect()
        }
    }
}

/// Hold out a seeded share of the *distinct* plain texts: all copies of a held-out
/// text are held out, so no duplicate of a held-out instance is ever trained on.
/// Noised sequences and canaries are always in training (they exist to be trained on).
pub(super) fn split_heldout(
    instances: &[Instance],
    fraction: f64,
    seed: u64,
) -> (Vec<u32>, Vec<u32>) {
    let mut groups: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for inst in instances {
        if inst.kind != InstanceKind::Plain {
            continue;
        }
        let entry = groups.entry(inst.text.as_str()).or_default();
        if entry.is_empty() {
            order.push(inst.text.as_str());
        }
        entry.push(inst.id);
    }
    let mut rng = rng::stream(seed, Stream::Split);
    rng::shuffle(&mut order, &mut rng);
    let n_held = ((order.len() as f64) * fraction).floor() as usize;
    let n_held = n_held.min(order.len().saturating_sub(1));
    let mut is_held = vec![false; instances.len()];
    for text in &order[..n_held] {
        for &id in &groups[text] {
            is_held[id as usize] = true;
        }
    }
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for inst in instances {
        if is_held[inst.id as usize] {
            held.push(inst.id);
        } else {
            train.push(inst.id);
        }
    }
    (train, held)
}
