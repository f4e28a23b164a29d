#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Hugging Face import and export against `transformers` (fixtures written by
//! tests/reference/hf_reference.py in a pinned venv; no Python needed here).
//!
//! - Import: tiny random GPT-2 (tanh GELU, tied head) and GPT-NeoX models (rotary on half
//!   of each head with parallel attention and MLP; rotary on all of it, sequential), every
//!   parameter perturbed so layer norms and biases are not the identity. Mnemo's logits
//!   must equal transformers' to 1e-4, its greedy continuations must be the same tokens,
//!   and the tokenizer must give the same ids.
//! - Export: a Mnemo model written as a GPT-2 folder; transformers' logits for it
//!   (committed) must equal Mnemo's to 1e-4.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mnemo_core::backend::Device;
use mnemo_core::checkpoint::Checkpoint;
use mnemo_core::hf::{self, Family};
use mnemo_core::model::{Activation, Layout, ModelConfig, ids_tensor};
use mnemo_core::{Gpt, Tokenizer};
use rand::{Rng, SeedableRng};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf")
}

fn read_logits(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(name, v)| {
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, (v.shape().to_vec(), vals))
        })
        .collect()
}

fn logits(model: &Gpt, ids: &[u32]) -> Vec<f32> {
    let dev = model.wte.val().device();
    model
        .forward(ids_tensor(&[ids.to_vec()], ids.len(), 0, &dev))
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_import(name: &str, family: Family, layout: Layout) {
    let dir = fixtures().join(name);
    let m = hf::read_dir(&dir).unwrap();
    assert_eq!(m.family, family);
    assert_eq!(m.checkpoint.config.layout, layout, "{name}");
    let tok = m.tokenizer.expect("the fixture has a tokenizer.json");
    let model = Gpt::from_checkpoint(&m.checkpoint, &Device::flex()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let reference = read_logits(&dir.join("expected.safetensors"));
    let texts = expected["texts"].as_array().unwrap();
    assert_eq!(texts.len(), 3);
    for (i, t) in texts.iter().enumerate() {
        let ids: Vec<u32> = serde_json::from_value(t["ids"].clone()).unwrap();
        let Tokenizer::Hf(hf_tok) = &tok else {
            panic!("an imported tokenizer")
        };
        assert_eq!(
            hf_tok.encode(t["text"].as_str().unwrap(), true).unwrap(),
            ids
        );
        let (shape, want) = &reference[&format!("logits.{i}")];
        assert_eq!(shape, &vec![ids.len(), m.checkpoint.vocab]);
        let got = logits(&model, &ids);
        let diff = max_diff(&got, want);
        assert!(diff < 1e-4, "{name} text {i}: max |logit diff| {diff}");
        // Not a trivially flat model: logits spread over several units.
        let spread = want.iter().fold(0.0f32, |a, &x| a.max(x.abs()));
        assert!(spread > 0.5, "{name}: logits too flat ({spread})");
        let greedy: Vec<u32> = serde_json::from_value(t["greedy"].clone()).unwrap();
        let ours = pollster::block_on(model.greedy(&ids[..6], greedy.len())).unwrap();
        assert_eq!(ours, greedy, "{name} text {i}: greedy continuation");
    }
}

#[test]
fn imported_gpt2_gives_transformers_logits_and_continuations() {
    check_import("gpt2", Family::Gpt2, Layout::Gpt2);
}

#[test]
fn imported_neox_parallel_partial_rotary_gives_transformers_logits() {
    check_import(
        "neox",
        Family::Neox,
        Layout::Neox {
            rotary_dims: 4,
            rotary_base: 10_000,
            parallel: true,
        },
    );
}

#[test]
fn imported_neox_sequential_full_rotary_gives_transformers_logits() {
    check_import(
        "neox-seq",
        Family::Neox,
        Layout::Neox {
            rotary_dims: 8,
            rotary_base: 10_000,
            parallel: false,
        },
    );
}

#[test]
fn a_wrong_tensor_shape_or_missing_tensor_is_named() {
    let dir = fixtures().join("neox");
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let wider = config.replace("\"hidden_size\": 32", "\"hidden_size\": 64");
    let wider = wider.replace("\"intermediate_size\": 128", "\"intermediate_size\": 256");
    let e = hf::import(&hf::HfFiles {
        config: &wider,
        weights: &weights,
        tokenizer: None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gpt_neox.embed_in.weight") && e.contains("shape"),
        "{e}"
    );
    let deeper = config.replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    let e = hf::import(&hf::HfFiles {
        config: &deeper,
        weights: &weights,
        tokenizer: None,
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("gpt_neox.layers.2."), "{e}");
    let e = hf::import(&hf::HfFiles {
        config: &config,
        weights: b"not safetensors",
        tokenizer: None,
    })
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("model.safetensors"), "{e}");
}

/// The model the export fixture was made from: a Mnemo model (untied head, exact GELU,
/// byte tokenizer) whose every weight is perturbed from a seed, so the file's layer norms
/// and biases are not the identity.
fn export_model() -> (Checkpoint, Tokenizer) {
    let config = ModelConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        context: 32,
        tied_head: false,
        activation: Activation::Gelu,
        layout: Layout::Gpt2,
    };
    let tok = Tokenizer::Byte;
    let dev = Device::flex();
    let model = Gpt::new(&config, tok.vocab_size(), 11, &dev);
    let mut ck = pollster::block_on(model.snapshot(0, config)).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for t in &mut ck.tensors {
        for v in &mut t.values {
            *v += rng.random_range(-0.1f32..0.1);
        }
    }
    (ck, tok)
}

const EXPORT_IDS: [&[u32]; 2] = [
    &[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100],
    &[256, 195, 169, 10, 0, 255, 257],
];

#[test]
fn exported_model_gives_mnemos_logits_in_transformers() {
    let (ck, tok) = export_model();
    let files = hf::export_gpt2(&ck, &tok).unwrap();
    let dir = fixtures().join("export");
    if std::env::var_os("MNEMO_WRITE_HF_EXPORT").is_some() {
        // Regenerate: write the folder, then run hf_reference.py export-check on it.
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let ids: Vec<Vec<u32>> = EXPORT_IDS.iter().map(|r| r.to_vec()).collect();
        std::fs::write(dir.join("ids.json"), serde_json::to_string(&ids).unwrap()).unwrap();
        return;
    }
    // The committed weights are the ones this code exports (else: regenerate).
    let committed = std::fs::read(dir.join("model.safetensors")).unwrap();
    let ours = &files.iter().find(|f| f.0 == "model.safetensors").unwrap().1;
    assert!(
        &committed == ours,
        "the exported weights changed: regenerate tests/fixtures/hf/export"
    );
    let reference = read_logits(&dir.join("transformers.safetensors"));
    let model = Gpt::from_checkpoint(&ck, &Device::flex()).unwrap();
    for (i, ids) in EXPORT_IDS.iter().enumerate() {
        let (_, want) = &reference[&format!("logits.{i}")];
        let diff = max_diff(&logits(&model, ids), want);
        assert!(diff < 1e-4, "export text {i}: max |logit diff| {diff}");
    }
    // transformers' tokenizer class reads the exported tokenizer.json as Mnemo's ids:
    // BOS, then the bytes of "hello".
    let bytes = std::fs::read(dir.join("transformers.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let v = st.tensor("hello").unwrap();
    let ids: Vec<i64> = v
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ids, vec![256, 104, 101, 108, 108, 111]);
    // And the folder reads back into the same model.
    let get = |n: &str| &files.iter().find(|f| f.0 == n).unwrap().1;
    let back = hf::import(&hf::HfFiles {
        config: std::str::from_utf8(get("config.json")).unwrap(),
        weights: get("model.safetensors"),
        tokenizer: Some(std::str::from_utf8(get("tokenizer.json")).unwrap()),
    })
    .unwrap();
    let mut sorted = ck.tensors.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(back.checkpoint.tensors, sorted);
    assert_eq!(back.checkpoint.config, ck.config);
}
