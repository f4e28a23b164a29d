//! The two learners: the constant soft prompt and the prompt generator (an MLP over the
//! frozen target's prefix embeddings), and the trainer that steps them.

use super::*;

/// A constant soft prompt: `L` trainable vectors in the embedding space.
#[derive(Module, Debug)]
pub struct SoftPrompt {
    /// The vectors `[L, d]`.
    pub vectors: Param<Tensor<2>>,
}

/// The generator's embeddings (trained with `embed_lr`).
#[derive(Module, Debug)]
pub struct GeneratorEmbeddings {
    /// Token embeddings `[vocab, d]`, copied from the target.
    pub wte: Param<Tensor<2>>,
    /// Position embeddings `[context, d]`, zero at initialisation.
    pub wpe: Param<Tensor<2>>,
}

/// The dynamic prompt's generator: a small transformer of the target's shape (see the
/// module notes). It has no final LayerNorm or head: only its hidden states are used.
#[derive(Module, Debug)]
pub struct PromptGenerator {
    /// Embeddings.
    pub embeddings: GeneratorEmbeddings,
    /// [`GENERATOR_BLOCKS`] blocks (trained with `block_lr`).
    pub blocks: Vec<Block>,
}

fn zeros1(n: usize, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::zeros([n], device))
}

fn zeros2(shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::zeros(shape, device))
}

impl PromptGenerator {
    /// The generator of the model in `checkpoint`, on `device` (an autodiff device to
    /// train it): token embeddings and the first blocks copied from the target (blocks
    /// the target lacks are drawn from `seed`), position embeddings and both output
    /// projections of every block zeroed, so that each block is the identity.
    pub fn from_checkpoint(
        checkpoint: &Checkpoint,
        seed: u64,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let target = Gpt::from_checkpoint(checkpoint, device)?;
        let config = ModelConfig {
            n_layers: GENERATOR_BLOCKS,
            ..checkpoint.config
        };
        let fresh = Gpt::new(&config, checkpoint.vocab, seed, device);
        let mut blocks: Vec<Block> = target.blocks.into_iter().take(GENERATOR_BLOCKS).collect();
        let have = blocks.len();
        blocks.extend(fresh.blocks.into_iter().skip(have));
        let d = checkpoint.config.d_model;
        let blocks = blocks
            .into_iter()
            .map(|mut b| {
                b.attn.proj.weight = zeros2([d, d], device);
                b.attn.proj.bias = Some(zeros1(d, device));
                b.mlp.proj.weight = zeros2([4 * d, d], device);
                b.mlp.proj.bias = Some(zeros1(d, device));
                b
            })
            .collect();
        Ok(PromptGenerator {
            embeddings: GeneratorEmbeddings {
                wte: target.wte,
                wpe: zeros2([checkpoint.config.context, d], device),
            },
            blocks,
        })
    }

    /// Every hidden state for the token ids `[B, T]`, as Hugging Face's
    /// `output_hidden_states` lists them (without a final LayerNorm): the embeddings
    /// (token + position), then the residual stream after each block.
    pub fn hidden_states(&self, ids: Tensor<2, Int>) -> Vec<Tensor<3>> {
        self.run(ids, self.blocks.len())
    }

    /// The soft prompt `[B, T, d]` for the prefixes `ids` `[B, T]`: the hidden states
    /// after [`PROMPT_BLOCK`] blocks (`hidden_states[-2]`).
    pub fn prompt(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let mut states = self.run(ids, PROMPT_BLOCK);
        // `run` returns `blocks + 1` states, so there is a last one.
        states
            .pop()
            .unwrap_or_else(|| unreachable!("run returns at least one state"))
    }

    fn run(&self, ids: Tensor<2, Int>, blocks: usize) -> Vec<Tensor<3>> {
        let [_, t] = ids.dims();
        let wpe = self.embeddings.wpe.val();
        let d = wpe.dims()[1];
        let mut h = burn::tensor::module::embedding(self.embeddings.wte.val(), ids)
            + wpe.slice(0..t).reshape([1, t, d]);
        let mut out = vec![h.clone()];
        for block in self.blocks.iter().take(blocks) {
            h = block.forward(h);
            out.push(h.clone());
        }
        out
    }
}

/// What is being trained.
enum Learner {
    Constant {
        prompt: SoftPrompt,
        optim: ModuleOptimizer,
    },
    Dynamic {
        generator: PromptGenerator,
        embed_optim: ModuleOptimizer,
        block_optim: ModuleOptimizer,
    },
}

fn adamw() -> ModuleOptimizer {
    AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init()
}

/// Training of one soft prompt (constant or dynamic) against a frozen target: a step
/// machine, like [`mnemo_core::Trainer`].
pub struct PromptTrainer {
    method: Method,
    target: Gpt,
    device: Device,
    learner: Option<Learner>,
    pairs: Vec<Pair>,
    order: Vec<usize>,
    prompt_len: usize,
    positions: PromptPositions,
    settings: SoftPromptSpec,
    total_steps: usize,
    step: usize,
    losses: Vec<(usize, f32)>,
}

/// The order in which prompt training visits the training pairs: seeded epochs.
fn pair_order(n: usize, steps: usize, batch: usize, seed: u64) -> Vec<usize> {
    let needed = steps.saturating_mul(batch);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = Vec::with_capacity(needed + n);
    while n > 0 && order.len() < needed {
        let mut epoch: Vec<usize> = (0..n).collect();
        rng::shuffle(&mut epoch, &mut rng);
        order.extend(epoch);
    }
    order.truncate(needed);
    order
}

impl PromptTrainer {
    fn new(
        method: Method,
        target: &Gpt,
        pairs: &PairSet,
        settings: &SoftPromptSpec,
        positions: PromptPositions,
        device: &Device,
        learner: Learner,
    ) -> Self {
        PromptTrainer {
            method,
            target: target.valid(),
            device: device.clone().autodiff(),
            learner: Some(learner),
            order: pair_order(
                pairs.train.len(),
                settings.steps,
                settings.batch_size,
                pairs.order_seed,
            ),
            pairs: pairs.train.clone(),
            prompt_len: pairs.lengths.prompt_len,
            positions,
            settings: *settings,
            total_steps: settings.steps,
            step: 0,
            losses: Vec::new(),
        }
    }

    /// A constant prompt of `pairs.lengths.prompt_len` vectors for `target` (held frozen,
    /// without autodiff, reading the prompt with `positions`), trained on `pairs.train` on
    /// `device` (autodiff is switched on here).
    pub fn constant(
        target: &Gpt,
        pairs: &PairSet,
        settings: &SoftPromptSpec,
        positions: PromptPositions,
        device: &Device,
    ) -> Result<Self, SoftPromptError> {
        settings.validate()?;
        let l = pairs.lengths.prompt_len;
        let pool: Vec<u32> = pairs.train.iter().flat_map(|p| p.prefix.clone()).collect();
        if pool.is_empty() {
            return Err(SoftPromptError::TooFewPairs(pairs.train.len()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(pairs.init_seed);
        let init: Vec<u32> = (0..l)
            .map(|_| pool[rng.random_range(0..pool.len())])
            .collect();
        let target_plain = target.valid();
        let tdev = target_plain.wte.val().device();
        let d = target_plain.d_model();
        let vectors = target_plain
            .embed(ids_tensor(&[init], l, 0, &tdev))
            .reshape([l, d])
            .autodiff();
        let learner = Learner::Constant {
            prompt: SoftPrompt {
                vectors: Param::from_tensor(vectors),
            },
            optim: adamw(),
        };
        Ok(Self::new(
            Method::Constant,
            target,
            pairs,
            settings,
            positions,
            device,
            learner,
        ))
    }

    /// A dynamic prompt: the [`PromptGenerator`] of `checkpoint` (the target's weights),
    /// trained on `pairs.train` on `device` against `target` (held frozen, reading the
    /// prompt with `positions`).
    pub fn dynamic(
        target: &Gpt,
        checkpoint: &Checkpoint,
        pairs: &PairSet,
        settings: &SoftPromptSpec,
        positions: PromptPositions,
        device: &Device,
    ) -> Result<Self, SoftPromptError> {
        settings.validate()?;
        let generator = PromptGenerator::from_checkpoint(
            checkpoint,
            pairs.init_seed,
            &device.clone().autodiff(),
        )?;
        let learner = Learner::Dynamic {
            generator,
            embed_optim: adamw(),
            block_optim: adamw(),
        };
        Ok(Self::new(
            Method::Dynamic,
            target,
            pairs,
            settings,
            positions,
            device,
            learner,
        ))
    }

    /// Which prompt this trains.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The frozen target.
    pub fn target(&self) -> &Gpt {
        &self.target
    }

    /// Steps in the run.
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Steps done.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every step is done.
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    /// `(step, loss)` of every step done (suffix cross-entropy before the update).
    pub fn losses(&self) -> &[(usize, f32)] {
        &self.losses
    }

    /// The constant prompt (`None` for a dynamic trainer).
    pub fn soft_prompt(&self) -> Option<&SoftPrompt> {
        match &self.learner {
            Some(Learner::Constant { prompt, .. }) => Some(prompt),
            _ => None,
        }
    }

    /// The generator (`None` for a constant trainer).
    pub fn generator(&self) -> Option<&PromptGenerator> {
        match &self.learner {
            Some(Learner::Dynamic { generator, .. }) => Some(generator),
            _ => None,
        }
    }

    /// Training pairs of step `step` (1-based).
    fn batch(&self, step: usize) -> Vec<&Pair> {
        let b = self.settings.batch_size;
        let start = ((step.max(1) - 1) * b).min(self.order.len());
        let end = (step * b).min(self.order.len());
        self.order[start..end]
            .iter()
            .filter_map(|&i| self.pairs.get(i))
            .collect()
    }

    /// Run one optimiser step and return its loss tensor (not yet read back); `None`
    /// when the run is done.
    pub fn step_lazy(&mut self) -> Result<Option<Tensor<1>>, SoftPromptError> {
        if self.is_done() {
            return Ok(None);
        }
        let step = self.step + 1;
        let Some(learner) = self.learner.take() else {
            return Ok(None);
        };
        let pairs = self.batch(step);
        let (learner, loss) = match learner {
            Learner::Constant { prompt, mut optim } => {
                let lens = vec![self.prompt_len; pairs.len()];
                let batch = prompt_batch(&pairs, &lens);
                let [l, d] = prompt.vectors.val().dims();
                let prompts = prompt
                    .vectors
                    .val()
                    .unsqueeze::<3>()
                    .expand([pairs.len(), l, d]);
                let loss = match prompt_loss(&self.target, self.positions, prompts, &batch) {
                    Ok(loss) => loss,
                    Err(e) => {
                        self.learner = Some(Learner::Constant { prompt, optim });
                        return Err(e);
                    }
                };
                let grads = GradientsParams::from_grads(loss.backward(), &prompt);
                let prompt = optim.step(self.settings.prompt_lr, prompt, grads);
                (Learner::Constant { prompt, optim }, loss)
            }
            Learner::Dynamic {
                generator,
                mut embed_optim,
                mut block_optim,
            } => {
                let lens: Vec<usize> = pairs.iter().map(|p| p.prefix.len()).collect();
                let batch = prompt_batch(&pairs, &lens);
                let k = lens.iter().copied().max().unwrap_or(0);
                let prefixes: Vec<Vec<u32>> = pairs.iter().map(|p| p.prefix.clone()).collect();
                let prompts = generator.prompt(ids_tensor(&prefixes, k, 0, &self.device));
                let loss = match prompt_loss(&self.target, self.positions, prompts, &batch) {
                    Ok(loss) => loss,
                    Err(e) => {
                        self.learner = Some(Learner::Dynamic {
                            generator,
                            embed_optim,
                            block_optim,
                        });
                        return Err(e);
                    }
                };
                let mut grads = loss.backward();
                let g_embed = GradientsParams::from_module(&mut grads, &generator.embeddings);
                let g_blocks = GradientsParams::from_module(&mut grads, &generator.blocks);
                let PromptGenerator { embeddings, blocks } = generator;
                let generator = PromptGenerator {
                    embeddings: embed_optim.step(self.settings.embed_lr, embeddings, g_embed),
                    blocks: block_optim.step(self.settings.block_lr, blocks, g_blocks),
                };
                (
                    Learner::Dynamic {
                        generator,
                        embed_optim,
                        block_optim,
                    },
                    loss,
                )
            }
        };
        self.learner = Some(learner);
        self.step = step;
        Ok(Some(loss.detach()))
    }

    /// Run one step and read its loss back (`None` when the run is done).
    pub async fn step(&mut self) -> Result<Option<f32>, SoftPromptError> {
        let Some(loss) = self.step_lazy()? else {
            return Ok(None);
        };
        let loss: f32 = loss.into_scalar_async().await.map_err(device_err)?;
        if !loss.is_finite() {
            return Err(SoftPromptError::Diverged {
                method: self.method,
                step: self.step,
                loss,
            });
        }
        self.losses.push((self.step, loss));
        Ok(Some(loss))
    }

    /// The soft prompt of each of `pairs`, `[L, d]` on the target's (plain) device: the
    /// constant prompt for every pair, or the generator's prompt for each prefix.
    pub fn prompts_for(&self, pairs: &[Pair]) -> Vec<Tensor<2>> {
        match &self.learner {
            Some(Learner::Constant { prompt, .. }) => {
                let v = prompt.vectors.val().inner();
                vec![v; pairs.len()]
            }
            Some(Learner::Dynamic { generator, .. }) => {
                let generator = generator.valid();
                let device = self.target.wte.val().device();
                let mut out: Vec<Option<Tensor<2>>> = vec![None; pairs.len()];
                // One generator pass per prefix length.
                let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
                for (i, p) in pairs.iter().enumerate() {
                    by_len.entry(p.prefix.len()).or_default().push(i);
                }
                for (k, members) in by_len {
                    if k == 0 {
                        continue;
                    }
                    for chunk in members.chunks(MAX_BATCH) {
                        let rows: Vec<Vec<u32>> =
                            chunk.iter().map(|&i| pairs[i].prefix.clone()).collect();
                        let h = generator.prompt(ids_tensor(&rows, k, 0, &device));
                        let [_, _, d] = h.dims();
                        for (r, &i) in chunk.iter().enumerate() {
                            out[i] = Some(h.clone().slice(r..r + 1).reshape([k, d]));
                        }
                    }
                }
                out.into_iter().flatten().collect()
            }
            None => Vec::new(),
        }
    }

    /// Greedy extraction on `pairs` with this prompt: one row per pair, in order.
    pub async fn evaluate(&self, pairs: &[Pair]) -> Result<Vec<ExtractionRow>, SoftPromptError> {
        let prompts = self.prompts_for(pairs);
        extract_pairs(&self.target, self.positions, pairs, Some(&prompts)).await
    }
}
