#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `Gpt::forward_with_mlp` with the plain MLP is `Gpt::forward`, and the ReLU option
//! gives non-negative hidden activations (GELU's go below zero).

use mnemo_core::Gpt;
use mnemo_core::backend::Device;
use mnemo_core::model::{Activation, Layout, ModelConfig, ids_tensor};

#[test]
fn hooked_forward_is_the_forward_and_relu_is_relu() {
    let neox = Layout::Neox {
        rotary_dims: 8,
        rotary_base: 10_000,
        parallel: true,
    };
    for (activation, layout) in [
        (Activation::Gelu, Layout::Gpt2),
        (Activation::Relu, Layout::Gpt2),
        (Activation::GeluTanh, neox),
    ] {
        let cfg = ModelConfig {
            n_layers: 2,
            d_model: 32,
            n_heads: 2,
            context: 16,
            tied_head: false,
            activation,
            layout,
        };
        let dev = Device::flex();
        let gpt = Gpt::new(&cfg, 14, 3, &dev);
        let ids = ids_tensor(&[vec![10, 1, 2, 12, 3], vec![10, 4, 12, 5, 6]], 5, 13, &dev);
        let a = gpt
            .forward(ids.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut mins = Vec::new();
        let b = gpt
            .forward_with_mlp(ids, &mut |_, m, x| {
                let h = m.hidden(x);
                mins.push(h.clone().min().into_scalar::<f32>());
                m.proj.forward(h)
            })
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        assert_eq!(mins.len(), 2);
        match activation {
            Activation::Relu => assert!(mins.iter().all(|&m| m == 0.0), "{mins:?}"),
            // Both GELUs dip below zero, to about -0.17.
            Activation::Gelu | Activation::GeluTanh => {
                assert!(mins.iter().all(|&m| m < 0.0 && m > -0.2), "{mins:?}")
            }
        }
    }
    // The default stays GELU and is left out of the JSON.
    let json = serde_json::to_string(&ModelConfig {
        n_layers: 1,
        d_model: 32,
        n_heads: 2,
        context: 16,
        tied_head: true,
        activation: Activation::Gelu,
        layout: Default::default(),
    })
    .unwrap();
    assert!(!json.contains("activation"));
    assert!(!json.contains("layout"));
}
