//! The built-in experiments: the demo of every view, and the TinyMem specs.

use crate::model::ModelConfig;
use crate::tokenizer::TokenizerKind;

use super::*;

/// The names [`ExperimentSpec::builtin`] knows: the demo of every view, and each
/// built-in TinyMem model's spec with every mitigation method at its defaults.
pub const BUILTIN_SPECS: [&str; 12] = [
    "demo",
    "profile",
    "counterfactual",
    "softprompt",
    "softprompt-context",
    "influence",
    "canary",
    "geometry",
    "geometry-overfit",
    "tinymem-noise-2l",
    "tinymem-noise-4l",
    "tinymem-backdoor-2l",
];

impl ExperimentSpec {
    /// A built-in experiment by name (one of [`BUILTIN_SPECS`], as `mnemo spec` prints
    /// them); lessons name their experiments so.
    pub fn builtin(name: &str) -> Option<Self> {
        Some(match name {
            "demo" => Self::demo(),
            "profile" => Self::profile_demo(),
            "counterfactual" => Self::counterfactual_demo(),
            "softprompt" => Self::softprompt_demo(),
            "softprompt-context" => Self::softprompt_context_demo(),
            "influence" => Self::influence_demo(),
            "canary" => Self::canary_demo(),
            "geometry" => Self::geometry_demo(),
            "geometry-overfit" => Self::geometry_overfit(),
            other => Self::mitigation_builtin(other).ok()?,
        })
    }

    /// A built-in trained TinyMem model's spec with a mitigation section naming it
    /// (every method at its reference default): `mnemo spec --mitigation NAME`.
    pub fn mitigation_builtin(name: &str) -> Result<Self, crate::builtin::BuiltinError> {
        let b = crate::builtin::get(name)?;
        let mut spec = b.spec()?;
        spec.mitigation = Some(MitigationSpec::all_defaults(Some(b.name)));
        Ok(spec)
    }

    /// The default demo: the built-in facts corpus and a small model that trains in
    /// well under a minute on the browser's CPU path.
    pub fn demo() -> Self {
        ExperimentSpec {
            version: SPEC_VERSION,
            name: "Facts demo".into(),
            seed: 42,
            data: DataSpec {
                source: DataSource::Builtin {
                    corpus: BuiltinCorpus::Facts,
                    instances: 48,
                },
                heldout_fraction: 0.25,
                canary: None,
                canaries: None,
            },
            tokenizer: TokenizerKind::Char,
            model: ModelConfig {
                n_layers: 2,
                d_model: 64,
                n_heads: 4,
                context: 64,
                tied_head: true,
                activation: Default::default(),
                layout: Default::default(),
            },
            training: TrainingConfig {
                batch_size: 8,
                duration: Duration::Steps(200),
                learning_rate: 3e-3,
                warmup_steps: 10,
                decay: Decay::Cosine,
                min_lr_ratio: 0.1,
                weight_decay: 0.1,
                betas: (0.9, 0.98),
                checkpoint_every: 50,
                checkpoint_steps: vec![],
                regulariser: None,
                packed: false,
            },
            profile: None,
            counterfactual: None,
            extraction: None,
            softprompt: None,
            influence: None,
            mitigation: None,
            geometry: None,
            exposure: None,
        }
    }

    /// The geometry-of-memorisation demo: the lollipop (300 points: disk, stick and
    /// point), one isolated training point and one point duplicated 20 times, a width-64
    /// depth-4 noise predictor trained for 8000 steps of 256 at rate 3e-3, FLIPD at
    /// `t0 = 0.035`; the `data` and `model` sections stay the demo's (geometry does not
    /// use them).
    ///
    /// The network is narrower than the section's default (width 128, depth 3) so that the
    /// demo trains in well under a minute in a page on the CPU path: 2.6 times fewer
    /// multiply-adds per step, and the same picture (natively: FLIPD disk 1.84, stick 0.87,
    /// point -0.05, duplicated -0.19, against 1.86, 0.96, 0.11, -0.04 at width 128). At
    /// width 64 and depth 3 the duplicated point only just collapses (FLIPD 0.39, the
    /// DD-Mem threshold is 0.5); at depth 2 and width 128 it does not (1.26).
    ///
    /// `t0` is not the reference's 1e-4: a model this small, trained this briefly, does
    /// not resolve the noise below `t ≈ 1e-2` (measured: FLIPD 2.0 on the disk, the stick
    /// and the point alike at 1e-4), and the empirical distribution of 300 points is a set
    /// of point masses at scales below their spacing anyway. The FLIPD curve shows the
    /// knee; 0.035 (`sigma ≈ 0.09`, about the stick's spacing) sits in it.
    pub fn geometry_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Geometry of memorisation demo".into();
        let mut g = GeometrySpec::default();
        g.data.isolated = 1;
        g.data.duplicated = 1;
        g.model.width = 64;
        g.model.depth = 4;
        g.training.steps = 8000;
        g.training.batch = 256;
        g.training.lr = 3e-3;
        g.t0 = 0.035;
        spec.geometry = Some(g);
        spec
    }

    /// The overfitting demo of the geometry view: a von Mises mixture on the circle from
    /// only 16 training points plus one isolated point on its arm, trained as the
    /// [`ExperimentSpec::geometry_demo`] (8000 steps of 256, rate 3e-3, FLIPD at
    /// `t0 = 0.035`), with lPCA and MLE on 8 neighbours. The isolated point is 1/17 of
    /// the training set, and the model collapses onto it: FLIPD about 0 where the data's
    /// arm has LID 1 (OD-Mem), and samples copy it. In the 300-point lollipop demo the
    /// same point is 1/320 of the data and stays a blob (FLIPD about 1.7; 1.0 with a
    /// width-256 model trained 24,000 steps), so it is not memorised there.
    pub fn geometry_overfit() -> Self {
        let mut spec = Self::geometry_demo();
        spec.name = "Geometry: overfitting a small training set".into();
        if let Some(g) = spec.geometry.as_mut() {
            g.data.manifold = crate::spec::geometry::Manifold::VonMises;
            g.data.points = 16;
            g.data.isolated = 1;
            g.data.duplicated = 0;
            g.k_lpca = 8;
            g.k_mle = 8;
        }
        spec
    }

    /// The memorisation-profile demo: 384 facts seen once each, two per step, in 8
    /// cohorts of 24 steps (checkpoints every 24 steps), 96 facts held out; the panel
    /// samples 40 instances per cohort and 80 held-out ones.
    pub fn profile_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Memorisation profile demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 480,
        };
        spec.data.heldout_fraction = 0.2;
        spec.training.duration = Duration::Epochs(1);
        spec.training.batch_size = 2;
        spec.training.learning_rate = 1e-2;
        spec.training.warmup_steps = 10;
        spec.training.checkpoint_every = 24;
        spec.profile = Some(ProfileSpec::default());
        spec
    }

    /// The counterfactual-memorisation demo: 48 invented facts and a canary ("my PIN
    /// is ...") repeated 8 times; 16 small models, each trained for 25 epochs on a random
    /// half of them. The canary, seen eight times per epoch whenever it is in, is the
    /// most memorised; unique facts are memorised less.
    pub fn counterfactual_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Counterfactual memorisation demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 64,
        };
        spec.data.heldout_fraction = 0.25;
        spec.data.canary = Some(CanarySpec {
            prefix: "my PIN is ".into(),
            digits: 4,
            repetitions: 8,
        });
        spec.model.d_model = 32;
        spec.training.batch_size = 8;
        spec.training.duration = Duration::Epochs(25);
        spec.training.checkpoint_every = 0;
        spec.counterfactual = Some(CounterfactualSpec::default());
        spec.extraction = Some(ExtractionSpec {
            prefix: 16,
            suffix: 32,
        });
        spec
    }

    /// The soft-prompt extraction demo: 64 invented facts, all trained on (nothing held
    /// out: the pairs come from training instances), a small model trained for 300 steps
    /// so that it has partly memorised them, then a constant prompt of 8 vectors and a
    /// dynamic one trained for 200 steps each on half of the (prefix 16, suffix 32) pairs
    /// and measured on the other half.
    pub fn softprompt_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Soft-prompt extraction demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 64,
        };
        spec.data.heldout_fraction = 0.0;
        spec.training.duration = Duration::Steps(300);
        spec.training.checkpoint_every = 0;
        spec.softprompt = Some(SoftPromptSpec {
            prompt_len: 8,
            prefix: 16,
            suffix: 32,
            test_fraction: 0.5,
            steps: 200,
            batch_size: 16,
            prompt_lr: 1e-2,
            embed_lr: 1e-3,
            block_lr: 1e-4,
        });
        spec
    }

    /// The soft-prompt demo in the papers' conditions (METHODS.md section 3, "the settings
    /// where they can help"): 64 invented records of four kinds, each trained behind its
    /// kind's source line (a hidden training context the pairs never include), with
    /// packed training (800 steps of 8 windows: partly memorised), so the prompts shift
    /// the text behind them as in the papers. The prompt settings are
    /// [`softprompt_context_settings`].
    pub fn softprompt_context_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Soft-prompt demo with a hidden training context".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Records,
            instances: 64,
        };
        spec.data.heldout_fraction = 0.0;
        spec.training.packed = true;
        spec.training.duration = Duration::Steps(800);
        spec.training.checkpoint_every = 0;
        spec.softprompt = Some(softprompt_context_settings());
        spec
    }

    /// The training-data influence demo: 50 invented facts plus one text repeated 6 times
    /// (a canary, "my PIN is ...", ids 50-55); a fifth of the distinct texts held out (10
    /// facts with seed 42); a small model (1 layer, d_model 32) trained for 30 epochs
    /// (173 steps) so the repeated text is memorised; influence summed over the
    /// checkpoints at steps 60, 120 and 173 for the repeated text, facts 0-2 and the first
    /// 8 held-out facts (11 distinct test texts with seed 42, where fact 0 is held out);
    /// case deletion of 1, 3 and 6 texts on the first 8 of them, 3 random draws each.
    pub fn influence_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Training-data influence demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 50,
        };
        spec.data.heldout_fraction = 0.2;
        spec.data.canary = Some(CanarySpec {
            prefix: "my PIN is ".into(),
            digits: 4,
            repetitions: 6,
        });
        spec.model = ModelConfig {
            n_layers: 1,
            d_model: 32,
            n_heads: 2,
            context: 64,
            tied_head: true,
            activation: Default::default(),
            layout: Default::default(),
        };
        spec.training.batch_size = 8;
        spec.training.duration = Duration::Epochs(30);
        spec.training.learning_rate = 5e-3;
        spec.training.warmup_steps = 10;
        spec.training.checkpoint_every = 0;
        spec.training.checkpoint_steps = vec![60, 120];
        spec.influence = Some(InfluenceSpec {
            checkpoints: Vec::new(),
            tests: vec![50, 0, 1, 2],
            heldout_tests: 8,
            deletion_k: vec![1, 3, 6],
            deletion_tests: 8,
            ..InfluenceSpec::default()
        });
        spec
    }

    /// The canary-exposure demo (the Secret Sharer, METHODS.md section 7): 160 invented
    /// facts (200 generated, a fifth held out) and six 4-digit PINs ("my PIN is 4 7 1
    /// 9") inserted 1, 2, 4, 8, 16 and 32 times; the demo's model trained for 20 epochs
    /// (280 steps of 16); every one of the 10,000 PINs scored, so the ranks are exact.
    pub fn canary_demo() -> Self {
        let mut spec = Self::demo();
        spec.name = "Canary exposure demo".into();
        spec.data.source = DataSource::Builtin {
            corpus: BuiltinCorpus::Facts,
            instances: 200,
        };
        spec.data.heldout_fraction = 0.2;
        spec.data.canaries = Some(super::CanarySet::pins());
        spec.training.batch_size = 16;
        spec.training.duration = Duration::Epochs(20);
        spec.training.checkpoint_every = 0;
        spec.exposure = Some(super::ExposureSpec::default());
        spec
    }

    /// A TinyMem spec with the paper's model shape (2 layers, d_model 128, 4 heads,
    /// context 150).
    pub fn tinymem_example() -> Self {
        let mut spec = Self::demo();
        spec.name = "TinyMem increment with noise".into();
        spec.tokenizer = TokenizerKind::Tinymem;
        spec.data = DataSpec {
            source: DataSource::Tinymem(TinyMemSpec {
                task: TinyMemTask::Increment,
                k: 7,
                aux_ks: vec![2, 3, 4, 5],
                main_sequences: 1000,
                aux_sequences: 100,
                noised_sequences: 100,
                noise_prob: 0.1,
                duplication: 10,
                terms: 20,
                test_sequences: None,
                backdoor: None,
            }),
            heldout_fraction: 0.1,
            canary: None,
            canaries: None,
        };
        spec.model = ModelConfig {
            n_layers: 2,
            d_model: 128,
            n_heads: 4,
            context: 150,
            tied_head: false,
            activation: Default::default(),
            layout: Default::default(),
        };
        spec.training.batch_size = 32;
        spec.training.learning_rate = 1e-3;
        spec.training.duration = Duration::Epochs(2);
        spec
    }

    /// TinyMem with noise, sized for a 2-core machine (METHODS.md section 5): the
    /// reference's generators, model and optimiser with the counts scaled by 1/20:
    /// INCREMENT, main task k = 7 with 1,000 examples (reference 20,000), auxiliary tasks
    /// k = 2, 3, 4, 5 with 150 each (reference 3,000), the last 50 of each task after a
    /// seeded shuffle as its test set (reference 1,000), 50 noised training examples
    /// (reference 1,000), noise +-1 with probability 0.05 each per number, 20 numbers per
    /// example, context 150. Model: `n_layers` blocks, 4 heads, d_model 128, ReLU MLP of
    /// 512, untied head; AdamW lr 1e-3, weight decay 0.1, betas (0.9, 0.98), batch 128,
    /// no schedule. Built-in models `tinymem-noise-2l` and `-4l` are trained from it.
    pub fn tinymem_noise(n_layers: usize, epochs: usize) -> Self {
        let mut spec = Self::tinymem_example();
        spec.name = format!("TinyMem noise, {n_layers} layers");
        spec.seed = 0;
        spec.data = DataSpec {
            source: DataSource::Tinymem(TinyMemSpec {
                task: TinyMemTask::Increment,
                k: 7,
                aux_ks: vec![2, 3, 4, 5],
                main_sequences: 1000,
                aux_sequences: 150,
                noised_sequences: 50,
                noise_prob: 0.1,
                duplication: 1,
                terms: 20,
                test_sequences: Some(50),
                backdoor: None,
            }),
            heldout_fraction: 0.0,
            canary: None,
            canaries: None,
        };
        spec.model = ModelConfig {
            n_layers,
            d_model: 128,
            n_heads: 4,
            context: 150,
            tied_head: false,
            activation: crate::model::Activation::Relu,
            layout: Default::default(),
        };
        spec.training = TrainingConfig {
            batch_size: 128,
            duration: Duration::Epochs(epochs),
            learning_rate: 1e-3,
            warmup_steps: 0,
            decay: Decay::Constant,
            min_lr_ratio: 1.0,
            weight_decay: 0.1,
            betas: (0.9, 0.98),
            checkpoint_every: 0,
            checkpoint_steps: vec![],
            regulariser: None,
            packed: false,
        };
        spec
    }

    /// TinyMem with a backdoor, sized like [`ExperimentSpec::tinymem_noise`] (same counts,
    /// model and optimiser): trigger `100`, no noise; every main-task example containing
    /// `100` is triggered, a tenth of those are the backdoor test set.
    pub fn tinymem_backdoor(n_layers: usize, epochs: usize) -> Self {
        let mut spec = Self::tinymem_noise(n_layers, epochs);
        spec.name = format!("TinyMem backdoor, {n_layers} layers");
        if let DataSource::Tinymem(t) = &mut spec.data.source {
            t.noised_sequences = 0;
            t.backdoor = Some(100);
        }
        spec
    }

    /// The reference's sizes, for a bigger machine: 20,000 main examples, 3,000 per
    /// auxiliary task, 1,000 test examples per task, 1,000 noised (or the backdoor),
    /// MULT data as in the reference's result table.
    pub fn tinymem_reference(n_layers: usize, backdoor: bool) -> Self {
        let mut spec = if backdoor {
            Self::tinymem_backdoor(n_layers, 1000)
        } else {
            Self::tinymem_noise(n_layers, 1000)
        };
        spec.name = format!("{} (reference sizes)", spec.name);
        if let DataSource::Tinymem(t) = &mut spec.data.source {
            t.task = TinyMemTask::Mult;
            t.main_sequences = 20_000;
            t.aux_sequences = 3_000;
            t.test_sequences = Some(1_000);
            if !backdoor {
                t.noised_sequences = 1_000;
            }
        }
        spec
    }

    /// Parse JSON, checking the version first (so an unknown version gets its own
    /// message rather than a field error), then validate.
    pub fn from_json(json: &str) -> Result<Self, SpecError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| SpecError::Malformed(e.to_string()))?;
        let version = value
            .get("version")
            .ok_or_else(|| SpecError::Malformed("missing field `version`".into()))?
            .as_u64()
            .ok_or_else(|| SpecError::Malformed("`version` must be a whole number".into()))?;
        if version == 0 || version > SPEC_VERSION as u64 {
            return Err(SpecError::UnsupportedVersion { found: version });
        }
        let spec: ExperimentSpec =
            serde_json::from_value(value).map_err(|e| SpecError::Malformed(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The same training run without checkpoints or analysis sections (the seed, hence
    /// the initial weights and the data order, unchanged): what a retrain, a fine-tune or
    /// a regularised run of another analysis trains.
    pub fn bare_run(&self) -> Self {
        let mut s = self.clone();
        s.training.checkpoint_every = 0;
        s.training.checkpoint_steps.clear();
        s.profile = None;
        s.counterfactual = None;
        s.extraction = None;
        s.softprompt = None;
        s.influence = None;
        s.mitigation = None;
        s.geometry = None;
        s.exposure = None;
        s
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every field against [`limits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version == 0 || self.version > SPEC_VERSION {
            return Err(SpecError::UnsupportedVersion {
                found: self.version as u64,
            });
        }
        self.model.validate()?;
        self.training.validate()?;
        self.data.validate()?;
        if let Some(p) = &self.profile {
            p.validate()?;
            if self.training.checkpoint_every == 0 {
                return Err(SpecError::Inconsistent(
                    "a profile needs training.checkpoint_every (the cohort length) above 0".into(),
                ));
            }
        }
        if let Some(c) = &self.counterfactual {
            c.validate()?;
        }
        if let Some(e) = &self.extraction {
            e.validate()?;
        }
        if let Some(p) = &self.softprompt {
            p.validate()?;
        }
        if let Some(i) = &self.influence {
            i.validate()?;
        }
        if let Some(m) = &self.mitigation {
            m.validate()?;
        }
        if let Some(g) = &self.geometry {
            g.validate()?;
        }
        if let Some(e) = &self.exposure {
            e.validate()?;
            if self.data.canaries.is_none() {
                return Err(SpecError::Inconsistent(
                    "exposure needs data.canaries (the secrets to rank)".into(),
                ));
            }
        }
        if self.tokenizer == TokenizerKind::Tinymem
            && !matches!(self.data.source, DataSource::Tinymem(_))
        {
            // Allowed (the user may upload digit text), but a canary prefix must then
            // be digits too; the corpus builder reports the offending character.
        }
        Ok(())
    }
}

/// The soft-prompt settings of [`ExperimentSpec::softprompt_context_demo`]: prompts of 13
/// vectors (a source line with its BOS is 12 to 14 tokens), prefixes of 13 tokens,
/// suffixes of 32, half of the 64 pairs to train on, 400 steps of 16 pairs per prompt.
/// The generator's rates are 30 times below the first demo's (embeddings 3e-5, blocks
/// 3e-6): with 32 training pairs it fits them within a few dozen steps at 1e-3 and then
/// extracts less than no prompt on the test pairs (measured on seeds 42, 1, 2: fractional
/// 36%, 40%, 47% against 54%, 57%, 61% without a prompt).
pub fn softprompt_context_settings() -> SoftPromptSpec {
    SoftPromptSpec {
        prompt_len: 13,
        prefix: 13,
        suffix: 32,
        test_fraction: 0.5,
        steps: 400,
        batch_size: 16,
        prompt_lr: 1e-2,
        embed_lr: 3e-5,
        block_lr: 3e-6,
    }
}
