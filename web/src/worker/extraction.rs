//! Job: greedy extraction on the kept model (trained first when the job names a spec).

use mnemo_core::spec::ExtractionSpec;
use mnemo_core::{BackendKind, ExperimentSpec, Gpt};
use mnemo_measures::extraction::extract;

use super::{device_for, kept_or_err, now_ms, post, token_labels};
use crate::protocol::{ExtractionView, FromWorker};

/// Measure extraction with `settings`, after training `train` when given.
pub async fn run(
    settings: ExtractionSpec,
    train: Option<(ExperimentSpec, BackendKind)>,
) -> Result<(), String> {
    if let Some((spec, backend)) = train
        && super::train::run(spec, backend, None, false)
            .await?
            .is_none()
    {
        return Ok(());
    }
    let model = kept_or_err()?;
    let device = device_for(model.backend).await?;
    let gpt = Gpt::from_checkpoint(&model.checkpoint, &device).map_err(|e| e.to_string())?;
    let start = now_ms();
    let corpus = &model.corpus;
    let result = extract(&gpt, corpus, &settings)
        .await
        .map_err(|e| e.to_string())?;
    let prefixes = result
        .train
        .iter()
        .chain(&result.heldout)
        .filter_map(|r| {
            let tokens = &corpus.get(r.instance)?.tokens;
            Some((r.instance, tokens.get(..r.prefix_len)?.to_vec()))
        })
        .collect();
    post(&FromWorker::Extraction {
        view: Box::new(ExtractionView {
            result,
            labels: token_labels(corpus),
            prefixes,
            model: model.description,
        }),
        elapsed_s: (now_ms() - start) / 1000.0,
    });
    Ok(())
}
