#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! TinyMem's measures on a small corpus built by the real generators.

use mnemo_core::Gpt;
use mnemo_core::backend::Device;
use mnemo_core::corpus::{Corpus, InstanceKind};
use mnemo_core::spec::{DataSource, ExperimentSpec};
use mnemo_core::train::block_on;
use mnemo_measures::tinymem::{self, PREFIX, WINDOW};

fn corpus(backdoor: bool) -> (ExperimentSpec, Corpus) {
    let mut spec = if backdoor {
        ExperimentSpec::tinymem_backdoor(1, 1)
    } else {
        ExperimentSpec::tinymem_noise(1, 1)
    };
    if let DataSource::Tinymem(t) = &mut spec.data.source {
        t.main_sequences = 400;
        t.aux_sequences = 30;
        t.test_sequences = Some(10);
        if !backdoor {
            t.noised_sequences = 40;
        }
    }
    spec.model.d_model = 32;
    let c = Corpus::build(&spec.data, spec.tokenizer, spec.model.context, spec.seed).unwrap();
    (spec, c)
}

#[test]
fn noise_measure_counts_only_noised_windows_and_an_untrained_model_memorises_none() {
    let (spec, c) = corpus(false);
    let layout = tinymem::layout(&c).unwrap();
    // Counted by hand: noised examples whose tokens 50..100 differ from the clean copy's.
    let expected = layout
        .noised
        .iter()
        .filter(|&&id| {
            let inst = &c.instances[id as usize];
            let InstanceKind::Noised { clean } = &inst.kind else {
                unreachable!()
            };
            let mut ct = vec![c.tokenizer.bos()];
            ct.extend(c.tokenizer.encode(clean).unwrap());
            ct.push(c.tokenizer.eos());
            let w = |t: &[u32]| t[PREFIX.min(t.len())..t.len().min(PREFIX + WINDOW)].to_vec();
            w(&inst.tokens) != w(&ct)
        })
        .count();
    assert!(expected > 5 && expected < 40, "{expected}");
    let model = Gpt::new(&spec.model, 14, 1, &Device::flex());
    let m = block_on(tinymem::noise_memorisation(&model, &c, &layout.noised)).unwrap();
    assert_eq!(m.rows.len(), 40);
    assert_eq!(m.counted, expected);
    assert_eq!(m.memorised, 0, "an untrained model reproduces no noise");
    assert!(m.rows.iter().all(|r| r.generated.len() <= WINDOW));
    let q = block_on(tinymem::quality(&model, &c, layout)).unwrap();
    assert_eq!(q.per_task.len(), 5);
    assert!(q.accuracy < 0.3 && q.perplexity > 5.0, "{q:?}");
}

#[test]
fn backdoor_measure_reads_the_prefix_through_the_trigger() {
    let (spec, c) = corpus(true);
    let layout = tinymem::layout(&c).unwrap();
    assert!(!layout.backdoor_test.is_empty());
    let model = Gpt::new(&spec.model, 14, 1, &Device::flex());
    let b = block_on(tinymem::backdoor_success(
        &model,
        &c,
        layout,
        &layout.backdoor_test,
    ))
    .unwrap();
    for r in &b.rows {
        let t = &c.instances[r.instance as usize].tokens;
        assert_eq!(&t[r.prefix_len - 3..r.prefix_len], &[1, 0, 0]);
        assert_eq!(
            r.generated.len(),
            WINDOW.min(spec.model.context - r.prefix_len)
        );
        assert_eq!(r.fired, r.generated.iter().all(|&x| x == 2));
    }
    // Not TinyMem data: a typed error.
    let demo = ExperimentSpec::demo();
    let other = Corpus::build(&demo.data, demo.tokenizer, 64, 1).unwrap();
    assert!(tinymem::layout(&other).is_err());
}
