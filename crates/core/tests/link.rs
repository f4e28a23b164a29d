#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Experiment links: round trips, large texts by hash, a frozen v1 link, refusals that
//! name the problem, and a bounded fuzz run of the decoder and the upload parser.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mnemo_core::link::{
    INFLATED_BYTES, LinkError, LinkPayload, TEXT_IN_LINK, attach_corpus, decode, encode, sha256_hex,
};
use mnemo_core::spec::{DataSource, ExperimentSpec, SplitMode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../tests/fixtures/links")
        .join(name)
}

fn deflate_b64(json: &str) -> String {
    format!(
        "v1.{}",
        URL_SAFE_NO_PAD.encode(miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 6))
    )
}

#[test]
fn every_demo_round_trips_with_view_and_teacher_settings() {
    for name in mnemo_core::spec::BUILTIN_SPECS {
        let spec = ExperimentSpec::builtin(name).unwrap();
        let mut p = LinkPayload::new(spec);
        p.view = Some("profile".into());
        p.run = true;
        p.lesson = Some("Look at the diagonal.".into());
        p.guide = Some("canaries".into());
        p.lock = vec!["model.d_model".into()];
        p.hide = vec!["data".into(), "backend".into()];
        let link = encode(&p, "");
        assert!(link.starts_with("v1."));
        assert!(
            link.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "URL-safe"
        );
        assert_eq!(decode(&link).unwrap(), p);
        // A whole URL and a fragment with '#' decode too; page parameters after '&' are ignored.
        assert_eq!(
            decode(&format!("https://example.org/mnemo/#{link}")).unwrap(),
            p
        );
        assert_eq!(decode(&format!("#{link}&x=1")).unwrap(), p);
    }
}

#[test]
fn a_guide_that_is_not_a_lesson_id_is_refused_by_name() {
    for bad in ["", "Canaries", "../x", "a b", &"x".repeat(65)] {
        let mut p = LinkPayload::new(ExperimentSpec::demo());
        p.guide = Some(bad.to_string());
        match decode(&encode(&p, "")) {
            Err(LinkError::Field { field, .. }) => assert_eq!(field, "guide", "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn small_text_travels_inside_large_text_by_hash() {
    let mut spec = ExperimentSpec::demo();
    let small = "one line\nanother line\n".repeat(10);
    spec.data.source = DataSource::Text {
        text: small.clone(),
        split: SplitMode::Lines,
    };
    let p = LinkPayload::new(spec.clone());
    assert_eq!(
        decode(&encode(&p, "a.txt")).unwrap(),
        p,
        "small text inside the link"
    );

    let big: String = (0..TEXT_IN_LINK / 10 + 100)
        .map(|i| format!("line {i:04}\n"))
        .collect();
    assert!(big.len() > TEXT_IN_LINK);
    spec.data.source = DataSource::Text {
        text: big.clone(),
        split: SplitMode::Lines,
    };
    let link = encode(&LinkPayload::new(spec.clone()), "notes.txt");
    assert!(
        link.len() < 2000,
        "the text is not in the link: {} chars",
        link.len()
    );
    let mut got = decode(&link).unwrap();
    let c = got.corpus.clone().unwrap();
    assert_eq!(
        (c.sha256.as_str(), c.bytes, c.name.as_str()),
        (sha256_hex(&big).as_str(), big.len(), "notes.txt")
    );
    // The wrong file is refused and changes nothing; the right one completes the spec.
    let before = got.clone();
    let err = attach_corpus(&mut got, &big.replace("0001", "0002")).unwrap_err();
    assert!(matches!(err, LinkError::WrongFile { .. }), "{err}");
    assert_eq!(got, before);
    attach_corpus(&mut got, &big).unwrap();
    assert_eq!(got.spec, spec);
    assert_eq!(got.corpus, None);
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// A link written by this first version, frozen: it must keep decoding to this spec.
#[test]
fn a_frozen_v1_link_keeps_decoding() {
    let link = std::fs::read_to_string(fixture("v1_profile_demo.txt")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("v1_profile_demo.json")).unwrap())
            .unwrap();
    let p = decode(&link).unwrap();
    assert_eq!(serde_json::to_value(&p).unwrap(), expected);
    assert_eq!(p.view.as_deref(), Some("profile"));
    assert_eq!(p.spec.model.d_model, 64);
}

fn err(link: &str) -> String {
    decode(link).unwrap_err().to_string()
}

#[test]
fn bad_links_are_refused_with_the_reason() {
    assert!(err("").contains("no experiment"));
    assert!(err("https://x/#").contains("no experiment"));
    assert!(err("#hello").contains("not a Mnemo experiment link"));
    assert!(err("#v9.abc").contains("version 9 is newer"));
    assert!(err("#v1.!!!").contains("not base64url"));
    assert!(
        err(&format!("#v1.{}", URL_SAFE_NO_PAD.encode(b"not deflate")))
            .contains("does not inflate")
    );
    assert!(err(&"v1.".repeat(100_000)).contains("characters long"));
    // A compression bomb: 64 MiB of zeros inflate past the bound and are refused.
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b' '; 64 << 20], 9);
    assert!(bomb.len() < 200_000);
    assert!(
        err(&format!("v1.{}", URL_SAFE_NO_PAD.encode(bomb))).contains(&INFLATED_BYTES.to_string())
    );
    // Values are checked against the same limits as the form, naming the field.
    let mut v = serde_json::to_value(LinkPayload::new(ExperimentSpec::demo())).unwrap();
    v["spec"]["model"]["d_model"] = 100_000.into();
    assert!(err(&deflate_b64(&v.to_string())).contains("model.d_model"));
    let mut v = serde_json::to_value(LinkPayload::new(ExperimentSpec::demo())).unwrap();
    v["spec"]["sneaky"] = 1.into();
    assert!(err(&deflate_b64(&v.to_string())).contains("sneaky"));
    let mut v = serde_json::to_value(LinkPayload::new(ExperimentSpec::demo())).unwrap();
    v["view"] = "<script>alert(1)</script>".into();
    assert!(err(&deflate_b64(&v.to_string())).contains("unknown view"));
    let mut v = serde_json::to_value(LinkPayload::new(ExperimentSpec::demo())).unwrap();
    v["hide"] = serde_json::json!(["<img src=x onerror=alert(1)>"]);
    assert!(err(&deflate_b64(&v.to_string())).contains("not a control name"));
    let mut v = serde_json::to_value(LinkPayload::new(ExperimentSpec::demo())).unwrap();
    v["corpus"] = serde_json::json!({"sha256": "00", "bytes": 5});
    assert!(err(&deflate_b64(&v.to_string())).contains("corpus"));
    assert!(err(&deflate_b64("[1,2,3]")).contains("not a Mnemo experiment"));
}

/// Mutate valid links and feed random inputs to the decoder and the upload parser for a
/// fixed number of executions (seeded): nothing may panic, and anything that decodes
/// must be valid. Run longer with MNEMO_FUZZ_EXECS.
#[test]
fn fuzz_the_link_decoder_and_the_upload_parser() {
    let execs: usize = std::env::var("MNEMO_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let seeds: Vec<String> = [
        ExperimentSpec::demo(),
        ExperimentSpec::profile_demo(),
        ExperimentSpec::counterfactual_demo(),
    ]
    .into_iter()
    .map(|s| encode(&LinkPayload::new(s), ""))
    .collect();
    let json_seed = serde_json::to_string(&LinkPayload::new(ExperimentSpec::demo())).unwrap();
    let (mut decoded, mut refused) = (0usize, 0usize);
    for i in 0..execs {
        let input: String = match i % 4 {
            // Character-level mutations of a valid link.
            0 => {
                let mut s: Vec<char> = seeds[i % seeds.len()].chars().collect();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..s.len());
                    match rng.random_range(0..3) {
                        0 => s[at] = char::from(rng.random_range(32u8..127)),
                        1 => {
                            s.remove(at);
                        }
                        _ => s.insert(at, char::from(rng.random_range(32u8..127))),
                    }
                }
                s.into_iter().collect()
            }
            // JSON-level mutations, validly compressed: the spec checks must catch them.
            1 => {
                let mut b = json_seed.clone().into_bytes();
                for _ in 0..rng.random_range(1..3) {
                    let at = rng.random_range(0..b.len());
                    b[at] = if rng.random_bool(0.5) {
                        rng.random_range(b'0'..=b'9')
                    } else {
                        rng.random_range(32u8..127)
                    };
                }
                deflate_b64(&String::from_utf8_lossy(&b))
            }
            // Random bytes, validly encoded.
            2 => {
                let n = rng.random_range(0..200);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes))
            }
            // Random text.
            _ => (0..rng.random_range(0..60))
                .map(|_| char::from(rng.random_range(32u8..127)))
                .collect(),
        };
        match decode(&input) {
            Ok(p) => {
                decoded += 1;
                p.spec.validate().unwrap();
            }
            Err(_) => refused += 1,
        }
        // The upload parser on random bytes, sometimes valid UTF-8 text.
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect()
        } else {
            input.into_bytes()
        };
        if let Ok(text) = mnemo_core::upload::decode_text("fuzz.txt", &bytes) {
            for name in ["fuzz.csv", "fuzz.jsonl"] {
                if let Ok(t) = mnemo_core::upload::read_texts(name, &text) {
                    assert!(t.records.is_some_and(|n| n > 0) && !t.text.is_empty());
                }
            }
        }
    }
    eprintln!(
        "fuzz: {execs} executions of the link decoder and the upload parsers (text, CSV, JSON lines); {decoded} links decoded (all valid), {refused} refused, no panic"
    );
    assert_eq!(decoded + refused, execs);
    assert!(refused > execs / 2, "most mutations are refused");
}
