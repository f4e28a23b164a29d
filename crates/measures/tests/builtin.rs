#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Each shipped built-in model memorises what its metadata says.

use mnemo_core::backend::Device;
use mnemo_core::corpus::Corpus;
use mnemo_core::train::block_on;
use mnemo_core::{Gpt, builtin};
use mnemo_measures::tinymem;

#[test]
fn shipped_builtins_memorise_what_their_metadata_says() {
    for b in builtin::ALL {
        if !b.shipped {
            assert!(b.checkpoint().is_err(), "{}: weights not shipped", b.name);
            assert!(
                b.memorised.is_none(),
                "{}: metadata without weights",
                b.name
            );
            continue;
        }
        let ck = b.checkpoint().unwrap();
        // The page fetches the same file from its bundle (Trunk copies models/tinymem).
        let path = format!("{}/../../models/{}", env!("CARGO_MANIFEST_DIR"), b.file());
        let from_file = b.checkpoint_from(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(from_file.tensors, ck.tensors, "{}", b.name);
        let spec = b.spec().unwrap();
        let corpus =
            Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
        let model = Gpt::from_checkpoint(&ck, &Device::flex()).unwrap();
        let m = block_on(tinymem::memorisation(&model, &corpus)).unwrap();
        let said = b.memorised.unwrap();
        assert!(
            (m.fraction() - said).abs() < 1e-9,
            "{}: measured {}, metadata {said}",
            b.name,
            m.fraction()
        );
    }
}
