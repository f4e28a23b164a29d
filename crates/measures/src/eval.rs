//! Per-instance outcomes of a model, shared by the analyses: mean surprisal, per-token
//! accuracy or mean rank of the true token over the scored positions of each instance.

use mnemo_core::burn::tensor::Tensor;
use mnemo_core::burn::tensor::activation::log_softmax;
use mnemo_core::spec::Outcome;
use mnemo_core::train::token_batch;
use mnemo_core::{Corpus, Gpt};

use crate::profile::ProfileError;

/// The outcome of each of `ids` under `model`: mean surprisal (nats/token), minus the
/// per-token accuracy, or the mean rank of the true token (1 = top), over the scored
/// positions of each instance.
pub async fn evaluate(
    model: &Gpt,
    corpus: &Corpus,
    ids: &[u32],
    outcome: Outcome,
    batch: usize,
) -> Result<Vec<f64>, ProfileError> {
    let device = model.wte.val().device();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(batch.max(1)) {
        let rows: Vec<&[u32]> = chunk
            .iter()
            .filter_map(|&i| corpus.get(i).map(|x| x.tokens.as_slice()))
            .collect();
        let (inputs, targets, mask, _) = token_batch(&rows, corpus.tokenizer.pad(), &device);
        let [b, _] = mask.dims();
        let per_token: Tensor<2> = match outcome {
            Outcome::Surprisal => -model.token_log_probs(inputs, targets),
            Outcome::Accuracy => {
                let logits = model.forward(inputs);
                let hit = logits.argmax(2).squeeze_dim::<2>(2).equal(targets).float();
                -hit
            }
            Outcome::Rank => {
                let logp = log_softmax(model.forward(inputs), 2);
                let target_lp = logp.clone().gather(2, targets.unsqueeze_dim(2));
                logp.greater(target_lp)
                    .float()
                    .sum_dim(2)
                    .squeeze_dim::<2>(2)
                    + 1.0
            }
        };
        let sums = (per_token * mask.clone()).sum_dim(1).reshape([b]);
        let counts = mask.sum_dim(1).reshape([b]);
        let sums = sums
            .into_data_async()
            .await
            .map_err(|e| ProfileError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| ProfileError::Device(format!("{e:?}")))?;
        let counts = counts
            .into_data_async()
            .await
            .map_err(|e| ProfileError::Device(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| ProfileError::Device(format!("{e:?}")))?;
        out.extend(
            sums.iter()
                .zip(&counts)
                .map(|(s, c)| *s as f64 / (*c as f64).max(1.0)),
        );
    }
    Ok(out)
}
