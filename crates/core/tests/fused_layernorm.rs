#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The fused layer norm (`model::layernorm`) against burn's `LayerNorm`: values, and the
//! gradients of x, gamma and beta through `.backward()`, on the CPU backend with and
//! without autodiff, for several shapes (rows not a multiple of the kernel's lanes, a
//! strided input, rank 2 to 4).

use mnemo_core::backend::Device;
use mnemo_core::burn::module::Param;
use mnemo_core::burn::nn::{LayerNorm, LayerNormConfig};
use mnemo_core::burn::tensor::{Distribution, Tensor, TensorData};
use mnemo_core::model::layernorm::layer_norm;
use rand::{Rng, SeedableRng};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()
}

fn ln(d: usize, seed: u64, device: &Device) -> LayerNorm {
    let mut ln = LayerNormConfig::new(d).init(device);
    ln.gamma = Param::from_tensor(Tensor::from_data(
        TensorData::new(random(d, seed).iter().map(|g| 1.0 + g / 4.0).collect(), [d]),
        device,
    ));
    ln.beta = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(random(d, seed + 1), [d]),
        device,
    )));
    ln
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: differs by {worst:e} (tolerance {tol:e})"
    );
}

/// Fused and burn's layer norm on the same `[b, t, d]` input, values and gradients.
fn check(shape: [usize; 3], strided: bool) {
    let [b, t, d] = shape;
    let device = Device::flex().autodiff();
    let norm = ln(d, 7, &device);
    let data = TensorData::new(random(b * t * d, 11), [b, t, d]);
    // A weight on the output so that every gradient is non-trivial.
    let w: Tensor<3> = Tensor::random([b, t, d], Distribution::Default, &device);
    let run = |fused: bool| {
        let x: Tensor<3> = Tensor::from_data(data.clone(), &device).require_grad();
        // A strided view: the kernel must read it in logical order.
        let input = if strided {
            x.clone().swap_dims(0, 1).swap_dims(0, 1)
        } else {
            x.clone()
        };
        let y = if fused {
            layer_norm(&norm, input.tanh())
        } else {
            norm.forward(input.tanh())
        };
        let grads = (y.clone() * w.clone()).sum().backward();
        let gx = x.grad(&grads).unwrap();
        let gg = norm.gamma.val().grad(&grads).unwrap();
        let gb = norm.beta.as_ref().unwrap().val().grad(&grads).unwrap();
        (values(y), values(gx), values(gg), values(gb))
    };
    let (y1, x1, g1, b1) = run(true);
    let (y0, x0, g0, b0) = run(false);
    assert_close("values", &y1, &y0, 1e-5);
    assert_close("dx", &x1, &x0, 1e-5);
    // Sums over b * t rows: the two sum in different orders.
    assert_close("dgamma", &g1, &g0, 5e-5);
    assert_close("dbeta", &b1, &b0, 5e-5);
    // A sanity check of the test itself: the gradients are not all zero.
    assert!(x1.iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn the_fused_layer_norm_is_burns_in_values_and_gradients() {
    check([2, 5, 8], false);
    check([3, 7, 13], false);
    check([4, 9, 128], false);
    check([2, 3, 37], true);
}

#[test]
fn without_autodiff_and_in_other_ranks_it_is_burns_too() {
    let device = Device::flex();
    let norm = ln(24, 3, &device);
    let x2: Tensor<2> = Tensor::from_data(TensorData::new(random(10 * 24, 5), [10, 24]), &device);
    assert_close(
        "rank 2",
        &values(layer_norm(&norm, x2.clone())),
        &values(norm.forward(x2)),
        1e-5,
    );
    let x4: Tensor<4> = Tensor::from_data(
        TensorData::new(random(2 * 3 * 4 * 24, 6), [2, 3, 4, 24]),
        &device,
    );
    assert_close(
        "rank 4",
        &values(layer_norm(&norm, x4.clone())),
        &values(norm.forward(x4)),
        1e-5,
    );
}
