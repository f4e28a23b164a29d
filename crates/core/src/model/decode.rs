//! Greedy decoding, from token prompts and from soft prompts.

use burn::tensor::Tensor;

use super::{Gpt, PromptPositions, ids_tensor};

impl Gpt {
    /// Greedy decoding: append `n` argmax tokens to `prompt` (the window slides when the
    /// context is full). Returns only the generated tokens; an empty prompt gives none.
    pub async fn greedy(
        &self,
        prompt: &[u32],
        n: usize,
    ) -> Result<Vec<u32>, burn::tensor::ExecutionError> {
        if prompt.is_empty() {
            // Nothing to condition on (and no position to read the next token from).
            return Ok(Vec::new());
        }
        let device = self.wte.val().device();
        let ctx = self.context();
        let mut seq: Vec<u32> = prompt.to_vec();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let start = seq.len().saturating_sub(ctx);
            let window = &seq[start..];
            let ids = ids_tensor(&[window.to_vec()], window.len(), 0, &device);
            let logits = self.forward(ids);
            let [_, t, v] = logits.dims();
            let last = logits.slice([0..1, t - 1..t, 0..v]).reshape([v]);
            let data = last.argmax(0).into_data_async().await?;
            let next = data.iter::<i64>().next().unwrap_or(0) as u32;
            seq.push(next);
            out.push(next);
        }
        Ok(out)
    }

    /// Greedy decoding of many prompts at once: for each prompt, the `n` argmax tokens
    /// that [`Gpt::greedy`] would append to it (the window slides when the context is
    /// full), in the order of `prompts`.
    ///
    /// Prompts of the same length are decoded together, one forward pass of the whole
    /// group per generated token; prompts of different lengths are grouped by length
    /// internally, so any mix is accepted. An empty prompt gives no tokens (as with
    /// [`Gpt::greedy`]); no prompts give an empty result. Callers that want to bound the
    /// memory of one pass pass at most that many prompts per call.
    pub async fn greedy_batch(
        &self,
        prompts: &[Vec<u32>],
        n: usize,
    ) -> Result<Vec<Vec<u32>>, burn::tensor::ExecutionError> {
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        if n == 0 {
            return Ok(out);
        }
        // Group prompt indices by length, in order of first appearance.
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(len, _)| *len == p.len()) {
                Some((_, members)) => members.push(i),
                None => groups.push((p.len(), vec![i])),
            }
        }
        let device = self.wte.val().device();
        let ctx = self.context();
        for (_, members) in groups {
            let mut seqs: Vec<Vec<u32>> = members.iter().map(|&i| prompts[i].clone()).collect();
            let b = seqs.len();
            for _ in 0..n {
                let len = seqs.first().map_or(0, Vec::len);
                let start = len.saturating_sub(ctx);
                let t = len - start;
                let windows: Vec<Vec<u32>> = seqs.iter().map(|s| s[start..].to_vec()).collect();
                let ids = ids_tensor(&windows, t, 0, &device);
                let logits = self.forward(ids);
                let [_, t, v] = logits.dims();
                let last = logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]);
                let data = last.argmax(1).into_data_async().await?;
                let mut next = data.iter::<i64>();
                // Every row grows by one token, so the rows keep one length.
                for seq in &mut seqs {
                    seq.push(next.next().unwrap_or(0) as u32);
                }
            }
            for (&i, mut seq) in members.iter().zip(seqs) {
                out[i] = seq.split_off(prompts[i].len());
            }
        }
        Ok(out)
    }
}

impl Gpt {
    /// Greedy decoding conditioned on soft prompts: for each row, the `n` argmax tokens
    /// that follow the soft prompt `soft[i]` (a `[L_i, d]` tensor on the model's device;
    /// `L_i` may be 0) and the tokens `prompts[i]`, read as [`Gpt::forward_prompted`]
    /// reads them with `positions` ([`Gpt::forward_prompted_at`]).
    ///
    /// With an empty soft prompt this is [`Gpt::greedy_batch`]. Rows with the same
    /// `(L_i, prompts[i].len())` are decoded together, one forward pass of the group per
    /// generated token. A row with neither soft prompt nor tokens gives no tokens.
    ///
    /// Window: when `L_i` + tokens exceed the context, the oldest *tokens* slide out and
    /// the soft prompt stays in front; a soft prompt longer than `context - 1` keeps only
    /// its last `context - 1` vectors. Callers that want the whole input seen keep
    /// `L_i + prompts[i].len() + n - 1 <= context`. Rows whose soft prompt is not
    /// `[L, d_model]` give no tokens.
    pub async fn greedy_embeddings(
        &self,
        positions: PromptPositions,
        soft: &[Tensor<2>],
        prompts: &[Vec<u32>],
        n: usize,
    ) -> Result<Vec<Vec<u32>>, burn::tensor::ExecutionError> {
        let rows = soft.len().min(prompts.len());
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        if n == 0 {
            return Ok(out);
        }
        let d = self.d_model();
        let ctx = self.context();
        // Group rows by (soft-prompt length, token count), in order of first appearance.
        let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
        for i in 0..rows {
            let [l, width] = soft[i].dims();
            if width != d || (l == 0 && prompts[i].is_empty()) {
                continue;
            }
            let key = (l, prompts[i].len());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let device = self.wte.val().device();
        for ((l, _), members) in groups {
            let b = members.len();
            // The soft prompts of the group, `[b, l', d]`, cut to leave room for a token.
            let keep = l.min(ctx.saturating_sub(1));
            let soft_group: Option<Tensor<3>> = (keep > 0).then(|| {
                Tensor::cat(
                    members
                        .iter()
                        .map(|&i| soft[i].clone().slice(l - keep..l).unsqueeze::<3>())
                        .collect(),
                    0,
                )
            });
            let mut seqs: Vec<Vec<u32>> = members.iter().map(|&i| prompts[i].clone()).collect();
            let start_len = seqs.first().map_or(0, Vec::len);
            for _ in 0..n {
                let len = seqs.first().map_or(0, Vec::len);
                let room = ctx - keep;
                let start = len.saturating_sub(room);
                let t = len - start;
                let windows: Vec<Vec<u32>> = seqs.iter().map(|s| s[start..].to_vec()).collect();
                let logits = match (&soft_group, t) {
                    (Some(s), 0) => match positions {
                        PromptPositions::Kept => self.forward_residual(s.clone()),
                        PromptPositions::Shifted => self.forward_embeddings(s.clone()),
                    },
                    (Some(s), _) => self.forward_prompted_at(
                        positions,
                        s.clone(),
                        ids_tensor(&windows, t, 0, &device),
                    ),
                    (None, _) => self.forward(ids_tensor(&windows, t, 0, &device)),
                };
                let [_, t, v] = logits.dims();
                let last = logits.slice([0..b, t - 1..t, 0..v]).reshape([b, v]);
                let data = last.argmax(1).into_data_async().await?;
                let mut next = data.iter::<i64>();
                for seq in &mut seqs {
                    seq.push(next.next().unwrap_or(0) as u32);
                }
            }
            for (&i, mut seq) in members.iter().zip(seqs) {
                out[i] = seq.split_off(start_len);
            }
        }
        Ok(out)
    }
}
