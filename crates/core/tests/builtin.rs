#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The built-in TinyMem models: each committed spec reads and validates, and each shipped
//! model's spec digest and vocabulary match its spec.

use mnemo_core::builtin::{self, BuiltinError};
use mnemo_core::corpus::Corpus;
use mnemo_core::model::Activation;

#[test]
fn every_builtin_spec_reads_and_every_shipped_model_matches_its_spec() {
    assert_eq!(
        builtin::names(),
        [
            "tinymem-noise-2l",
            "tinymem-noise-4l",
            "tinymem-backdoor-2l"
        ]
    );
    for b in builtin::ALL {
        let spec = b.spec().unwrap();
        assert!(
            b.digest_matches().unwrap(),
            "{}: the committed spec is the trained one",
            b.name
        );
        assert_eq!(spec.model.activation, Activation::Relu, "{}", b.name);
        assert_eq!((spec.model.d_model, spec.model.n_heads), (128, 4));
        let layers = if b.name.ends_with("4l") { 4 } else { 2 };
        assert_eq!(spec.model.n_layers, layers);
        // The shipped file itself (what the page fetches; the CLI compiles it in).
        let file = format!("{}/../../models/{}", env!("CARGO_MANIFEST_DIR"), b.file());
        let read = std::fs::read(&file)
            .map_err(|_| BuiltinError::NotShipped(b.name))
            .and_then(|bytes| b.checkpoint_from(&bytes));
        assert_eq!(
            read.is_ok(),
            b.shipped,
            "{}: shipped means its file is there",
            b.name
        );
        match read {
            Ok(ck) => {
                assert!(b.digest_matches().unwrap(), "{}: spec digest", b.name);
                let corpus =
                    Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed)
                        .unwrap();
                assert_eq!(corpus.tokenizer.vocab_size(), 14);
                ck.fits(&spec.model, corpus.tokenizer.vocab_size()).unwrap();
            }
            Err(BuiltinError::NotShipped(name)) => assert_eq!(name, b.name),
            Err(e) => panic!("{}: {e}", b.name),
        }
    }
    assert!(matches!(
        builtin::get("nope"),
        Err(BuiltinError::Unknown(_))
    ));
    let packed = builtin::pack(b"hello hello hello");
    assert_eq!(builtin::unpack(&packed).unwrap(), b"hello hello hello");
    assert!(builtin::unpack(b"not zlib").is_err());
}

/// The spec of the README's 17-method comparison (`models/tinymem/tinymem-noise-small.json`)
/// reads, and is the 2-layer noise model on fewer examples.
#[test]
fn the_small_comparison_spec_reads() {
    let text = include_str!("../../../models/tinymem/tinymem-noise-small.json");
    let spec = mnemo_core::ExperimentSpec::from_json(text).unwrap();
    let two = builtin::get("tinymem-noise-2l").unwrap().spec().unwrap();
    assert_eq!(spec.model, two.model);
    let corpus = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    assert_eq!(corpus.train.len(), 600);
}
