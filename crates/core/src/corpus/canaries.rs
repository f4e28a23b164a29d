//! The canaries a spec inserts: the single canary of `data.canary` and the secrets of an
//! exposure canary set (`data.canaries`), drawn from the seed.

use rand::Rng;

use crate::rng::{self, Stream};
use crate::spec::{CanarySet, CanarySpec};

/// The canary's text and secret, drawn from the seed.
pub fn canary(spec: &CanarySpec, seed: u64) -> (String, String) {
    let mut rng = rng::stream(seed ^ 0xCA4A_11E5, Stream::Data);
    let secret = (0..spec.digits)
        .map(|_| rng.random_range(0..10u8).to_string())
        .collect::<Vec<_>>()
        .join(" ");
    (format!("{}{}", spec.prefix, secret), secret)
}

/// The secrets of a canary set: one candidate index per canary, drawn uniformly from the
/// format's space with the seed's own stream and all different (a repeat is drawn
/// again), with the text each one writes.
pub fn exposure_canaries(
    set: &CanarySet,
    seed: u64,
) -> Result<Vec<(u128, String)>, crate::spec::SpecError> {
    set.validate()?;
    let format = set.parsed()?;
    let n = format.candidates();
    let mut rng = rng::stream(seed, Stream::Canaries);
    let mut drawn: Vec<u128> = Vec::with_capacity(set.repetitions.len());
    while drawn.len() < set.repetitions.len() {
        let i = rng.random_range(0..n);
        if !drawn.contains(&i) {
            drawn.push(i);
        }
    }
    Ok(drawn.into_iter().map(|i| (i, format.render(i))).collect())
}
