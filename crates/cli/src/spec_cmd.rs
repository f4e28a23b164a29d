//! `mnemo spec`: print a built-in experiment (the demos, TinyMem) or check a spec file.

use std::path::PathBuf;

use mnemo_core::ExperimentSpec;

use crate::{CliError, read_spec};

/// Print the demo the flags name, or the checked spec file.
pub fn spec_cmd(
    example: bool,
    tinymem: bool,
    profile: bool,
    counterfactual: bool,
    softprompt: bool,
    influence: bool,
    check: Option<PathBuf>,
) -> Result<(), CliError> {
    let spec = if let Some(path) = check {
        read_spec(&path)?
    } else if influence {
        ExperimentSpec::influence_demo()
    } else if softprompt {
        ExperimentSpec::softprompt_demo()
    } else if profile {
        ExperimentSpec::profile_demo()
    } else if counterfactual {
        ExperimentSpec::counterfactual_demo()
    } else if tinymem {
        ExperimentSpec::tinymem_example()
    } else if example {
        ExperimentSpec::demo()
    } else {
        return Err(CliError::NothingToDo);
    };
    crate::emit(&spec.to_json())
}

/// Print a TinyMem spec (noise or backdoor; this machine's sizes or the reference's).
pub fn tinymem_spec_cmd(
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
pub fn mitigation_spec_cmd(name: &str) -> Result<(), CliError> {
    let b = mnemo_core::builtin::get(name).map_err(|e| CliError::Output(e.to_string()))?;
    let mut spec = b.spec().map_err(|e| CliError::Output(e.to_string()))?;
    spec.mitigation = Some(mnemo_core::spec::MitigationSpec::all_defaults(Some(b.name)));
    crate::emit(&spec.to_json())
}
