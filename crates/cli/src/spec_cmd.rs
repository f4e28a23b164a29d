//! `mnemo spec`: print a built-in experiment (the demos, TinyMem) or check a spec file.

use std::path::PathBuf;

use clap::Args;
use mnemo_core::ExperimentSpec;

use crate::{CliError, read_spec};

/// The flags of `mnemo spec`.
#[derive(Args)]
pub struct SpecArgs {
    /// Print the complete example spec (the browser's default demo).
    #[arg(long)]
    pub example: bool,
    /// Print the TinyMem example instead (2 layers, d_model 128, context 150).
    #[arg(long)]
    pub tinymem: bool,
    /// Print the memorisation-profile demo instead.
    #[arg(long)]
    pub profile: bool,
    /// Print the counterfactual-memorisation demo instead.
    #[arg(long)]
    pub counterfactual: bool,
    /// Print the soft-prompt extraction demo instead.
    #[arg(long)]
    pub softprompt: bool,
    /// Print the soft-prompt demo where prompts can help instead: records trained packed
    /// behind a hidden source line (METHODS.md section 3).
    #[arg(long)]
    pub softprompt_context: bool,
    /// Print the training-data influence demo instead.
    #[arg(long)]
    pub influence: bool,
    /// Print the canary-exposure demo instead (six 4-digit PINs seen 1 to 32 times).
    #[arg(long)]
    pub canary: bool,
    /// Print the geometry-of-memorisation demo instead.
    #[arg(long)]
    pub geometry: bool,
    /// Print the geometry view's overfitting demo instead (16 circle points and an
    /// isolated one, which the model memorises: OD-Mem).
    #[arg(long)]
    pub geometry_overfit: bool,
    /// Print TinyMem with noise (METHODS.md section 5), sized for a 2-core machine:
    /// 1,000 main-task examples, 150 per auxiliary task, 50 test per task, 50 noised
    /// (the reference's counts / 20), the reference's model with --layers blocks.
    #[arg(long)]
    pub tinymem_noise: bool,
    /// Print TinyMem with the backdoor (trigger 100), sized as --tinymem-noise.
    #[arg(long, conflicts_with = "tinymem_noise")]
    pub tinymem_backdoor: bool,
    /// With --tinymem-noise/--tinymem-backdoor: the reference's sizes instead (20,000
    /// main examples of MULT data, 3,000 per auxiliary task, 1,000 test, 1,000 noised).
    #[arg(long)]
    pub reference: bool,
    /// Blocks of the TinyMem model (1-8).
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Training epochs of the TinyMem spec.
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Print a built-in TinyMem model's spec with a mitigation section (every
    /// unlearning method at its reference default), for `mnemo mitigate --spec`.
    #[arg(long, value_name = "BUILTIN")]
    pub mitigation: Option<String>,
    /// Check a spec file and print it normalised (defaults filled in).
    #[arg(long, value_name = "SPEC.json", conflicts_with_all = ["example", "tinymem", "profile", "counterfactual", "softprompt", "softprompt_context", "influence", "tinymem_noise", "tinymem_backdoor", "mitigation", "canary", "geometry", "geometry_overfit"])]
    pub check: Option<PathBuf>,
}

/// Run `mnemo spec`.
pub fn run(a: SpecArgs) -> Result<(), CliError> {
    if let Some(name) = a.mitigation {
        mitigation_spec_cmd(&name)
    } else if a.check.is_some() {
        spec_cmd(&a)
    } else if a.geometry_overfit {
        crate::emit(&ExperimentSpec::geometry_overfit().to_json())
    } else if a.geometry {
        crate::geometry_cmd::print_demo()
    } else if a.tinymem_noise || a.tinymem_backdoor {
        tinymem_spec_cmd(a.tinymem_backdoor, a.reference, a.layers, a.epochs)
    } else {
        spec_cmd(&a)
    }
}

/// Print the demo the flags name, or the checked spec file.
fn spec_cmd(a: &SpecArgs) -> Result<(), CliError> {
    let spec = if let Some(path) = &a.check {
        read_spec(path)?
    } else if a.canary {
        ExperimentSpec::canary_demo()
    } else if a.influence {
        ExperimentSpec::influence_demo()
    } else if a.softprompt_context {
        ExperimentSpec::softprompt_context_demo()
    } else if a.softprompt {
        ExperimentSpec::softprompt_demo()
    } else if a.profile {
        ExperimentSpec::profile_demo()
    } else if a.counterfactual {
        ExperimentSpec::counterfactual_demo()
    } else if a.tinymem {
        ExperimentSpec::tinymem_example()
    } else if a.example {
        ExperimentSpec::demo()
    } else {
        return Err(CliError::NothingToDo);
    };
    crate::emit(&spec.to_json())
}

/// Print a TinyMem spec (noise or backdoor; this machine's sizes or the reference's).
fn tinymem_spec_cmd(
    backdoor: bool,
    reference: bool,
    layers: usize,
    epochs: usize,
) -> Result<(), CliError> {
    let mut spec = if reference {
        ExperimentSpec::tinymem_reference(layers, backdoor)
    } else if backdoor {
        ExperimentSpec::tinymem_backdoor(layers, epochs)
    } else {
        ExperimentSpec::tinymem_noise(layers, epochs)
    };
    if reference {
        spec.training.duration = mnemo_core::spec::Duration::Epochs(epochs);
    }
    spec.validate().map_err(|source| CliError::Spec {
        path: PathBuf::from("--layers/--epochs"),
        source,
    })?;
    crate::emit(&spec.to_json())
}

/// Print built-in model `name`'s spec with every unlearning method at its default.
fn mitigation_spec_cmd(name: &str) -> Result<(), CliError> {
    let spec = mnemo_core::ExperimentSpec::mitigation_builtin(name)
        .map_err(|e| CliError::Output(e.to_string()))?;
    crate::emit(&spec.to_json())
}
