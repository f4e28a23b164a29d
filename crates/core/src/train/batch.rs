//! Batches as tensors: inputs, targets, the mask of scored targets and their count.

use super::*;

/// A batch: inputs `[B, T]`, targets `[B, T]`, the 0/1 mask of scored targets and their
/// count.
pub type Batch = (
    Tensor<2, burn::tensor::Int>,
    Tensor<2, burn::tensor::Int>,
    Tensor<2>,
    usize,
);

/// Inputs `[B, T]`, targets `[B, T]`, a 0/1 mask of scored (non-padding) targets and
/// the number of scored targets, for the instances `ids`. `T` is the longest instance
/// length minus one.
pub fn batch_tensors(corpus: &Corpus, ids: &[u32], device: &Device) -> Batch {
    let rows: Vec<&[u32]> = ids
        .iter()
        .filter_map(|&i| corpus.get(i).map(|x| x.tokens.as_slice()))
        .collect();
    token_batch(&rows, corpus.tokenizer.pad(), device)
}

/// Batch tensors from token rows (each with BOS first); see [`batch_tensors`].
pub fn token_batch(rows: &[&[u32]], pad: u32, device: &Device) -> Batch {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(2).max(2) - 1;
    let inputs: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| r[..r.len().saturating_sub(1)].to_vec())
        .collect();
    let targets: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| r.get(1..).unwrap_or(&[]).to_vec())
        .collect();
    let mut mask = Vec::with_capacity(rows.len() * t);
    let mut n = 0;
    for r in &targets {
        for j in 0..t {
            let scored = j < r.len();
            n += usize::from(scored);
            mask.push(if scored { 1.0f32 } else { 0.0 });
        }
    }
    (
        ids_tensor(&inputs, t, pad, device),
        ids_tensor(&targets, t, pad, device),
        Tensor::from_data(TensorData::new(mask, [rows.len(), t]), device),
        n,
    )
}
