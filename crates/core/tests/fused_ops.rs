#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The fused operations (`model::fused`) against the unfused formulas in burn's own
//! operations: values, and the gradients through `.backward()`, on the CPU backend with
//! and without autodiff, for several shapes (rows not a multiple of the kernels' lanes or
//! of their tasks' rows, strided inputs, other ranks). Layer norm against burn's
//! `LayerNorm`; the MLP's bias + GELU against `gelu(fc.forward(x))`; the causal softmax
//! against the scaled, masked and filled scores through burn's softmax; the head's
//! log-likelihood against `log_softmax(logits).gather(targets)`.

use mnemo_core::backend::Device;
use mnemo_core::burn::module::Param;
use mnemo_core::burn::nn::{LayerNorm, LayerNormConfig, LinearConfig};
use mnemo_core::burn::tensor::activation::{gelu, log_softmax, softmax};
use mnemo_core::burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
use mnemo_core::model::fused::{MASKED, causal_softmax, layer_norm, target_log_softmax};
use mnemo_core::model::{Activation, Mlp};
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

/// The MLP's hidden activations with the fused bias + GELU (`Mlp::hidden`) against
/// `gelu(fc.forward(x))`: values and the gradients of x, the weight and the bias.
fn check_mlp(shape: [usize; 3], strided: bool) {
    let [b, t, d] = shape;
    let device = Device::flex().autodiff();
    let mut fc = LinearConfig::new(d, 4 * d).init(&device);
    // Biases large enough that leaving one out, or its gradient, shows.
    fc.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(random(4 * d, 21), [4 * d]),
        &device,
    )));
    let proj = LinearConfig::new(4 * d, d).init(&device);
    let mlp = Mlp {
        fc,
        proj,
        activation: Activation::Gelu,
    };
    let data = TensorData::new(random(b * t * d, 22), [b, t, d]);
    let w: Tensor<3> = Tensor::random([b, t, 4 * d], Distribution::Default, &device);
    let run = |fused: bool| {
        let x: Tensor<3> = Tensor::from_data(data.clone(), &device).require_grad();
        let input = if strided {
            x.clone().swap_dims(0, 1).swap_dims(0, 1)
        } else {
            x.clone()
        };
        let h = if fused {
            mlp.hidden(input)
        } else {
            gelu(mlp.fc.forward(input))
        };
        let grads = (h.clone() * w.clone()).sum().backward();
        let gx = x.grad(&grads).unwrap();
        let gw = mlp.fc.weight.val().grad(&grads).unwrap();
        let gb = mlp.fc.bias.as_ref().unwrap().val().grad(&grads).unwrap();
        (values(h), values(gx), values(gw), values(gb))
    };
    let (h1, x1, w1, b1) = run(true);
    let (h0, x0, w0, b0) = run(false);
    assert_close("values", &h1, &h0, 1e-5);
    assert_close("dx", &x1, &x0, 1e-5);
    assert_close("dweight", &w1, &w0, 1e-5);
    assert_close("dbias", &b1, &b0, 5e-5);
    assert!(b1.iter().any(|v| v.abs() > 1e-2));
}

#[test]
fn the_fused_bias_gelu_is_gelu_of_the_linear_layer() {
    check_mlp([2, 5, 8], false);
    check_mlp([3, 30, 16], false);
    check_mlp([2, 3, 13], true);
}

/// `softmax(mask_fill(s * scale, future, MASKED))` written out in burn's operations.
fn written_out<const D: usize>(s: Tensor<D>, scale: f64) -> Tensor<D> {
    let dims = s.dims();
    let (tq, tk) = (dims[D - 2], dims[D - 1]);
    let mask = Tensor::<2, Bool>::tril_mask([tq, tk], (tk - tq) as i64, &s.device())
        .unsqueeze::<D>()
        .expand(dims);
    softmax((s * scale).mask_fill(mask, MASKED), D - 1)
}

fn check_softmax<const D: usize>(dims: [usize; D], strided: bool) {
    let device = Device::flex().autodiff();
    let n = dims.iter().product();
    let data = TensorData::new(random(n, 31).iter().map(|v| v * 3.0).collect(), dims);
    let w: Tensor<D> = Tensor::random(dims, Distribution::Default, &device);
    let scale = 0.25;
    let run = |fused: bool| {
        let s: Tensor<D> = Tensor::from_data(data.clone(), &device).require_grad();
        let input = if strided {
            s.clone().swap_dims(0, 1).swap_dims(0, 1)
        } else {
            s.clone()
        };
        let p = if fused {
            causal_softmax(input, scale)
        } else {
            written_out(input, scale)
        };
        let grads = (p.clone() * w.clone()).sum().backward();
        (values(p), values(s.grad(&grads).unwrap()))
    };
    let (p1, s1) = run(true);
    let (p0, s0) = run(false);
    assert_close("probabilities", &p1, &p0, 1e-6);
    assert_close("dscores", &s1, &s0, 1e-6);
    assert!(s1.iter().any(|v| v.abs() > 1e-3));
    // The future's probabilities are exactly 0 (the first row sees one key).
    assert_eq!(p1[0], 1.0);
    assert!(p1[1..dims[D - 1]].iter().all(|&p| p == 0.0));
}

#[test]
fn the_fused_causal_softmax_is_the_masked_softmax() {
    check_softmax([2, 4, 9, 9], false);
    check_softmax([1, 3, 70, 70], false);
    check_softmax([2, 3, 11, 11], true);
    check_softmax([3, 5, 5], false);
}

#[test]
fn fused_ops_without_autodiff_equal_the_written_out_forms() {
    let device = Device::flex();
    let s: Tensor<4> = Tensor::from_data(
        TensorData::new(random(2 * 2 * 6 * 6, 41), [2, 2, 6, 6]),
        &device,
    );
    assert_close(
        "causal softmax",
        &values(causal_softmax(s.clone(), 0.5)),
        &values(written_out(s, 0.5)),
        1e-6,
    );
}

/// The fused log-likelihood against `log_softmax(logits).gather(targets)` under autodiff:
/// values and the logits' gradient, with a weight on each position so the gradient of
/// every row differs, and a strided (transposed back) input.
fn check_log_likelihood(shape: [usize; 3], strided: bool) {
    let [b, t, v] = shape;
    let device = Device::flex().autodiff();
    let data = TensorData::new(
        random(b * t * v, 51).iter().map(|x| 3.0 * x).collect(),
        [b, t, v],
    );
    let ids: Vec<i64> = (0..b * t).map(|i| ((i * 5 + 3) % v) as i64).collect();
    let targets: Tensor<2, Int> = Tensor::from_data(TensorData::new(ids, [b, t]), &device);
    let w: Tensor<2> = Tensor::random([b, t], Distribution::Default, &device);
    let run = |fused: bool| {
        let x: Tensor<3> = Tensor::from_data(data.clone(), &device).require_grad();
        let input = if strided {
            x.clone().swap_dims(0, 1).swap_dims(0, 1)
        } else {
            x.clone()
        };
        let lp = if fused {
            target_log_softmax(input, targets.clone())
        } else {
            log_softmax(input, 2)
                .gather(2, targets.clone().unsqueeze_dim(2))
                .squeeze_dim(2)
        };
        let grads = (lp.clone() * w.clone()).sum().backward();
        (values(lp.inner()), values(x.grad(&grads).unwrap()))
    };
    let (l1, g1) = run(true);
    let (l0, g0) = run(false);
    assert_close("log-likelihood", &l1, &l0, 1e-5);
    assert_close("dlogits", &g1, &g0, 1e-6);
    assert!(l1.iter().all(|&l| l <= 0.0 && l > -30.0));
    assert!(g1.iter().any(|g| g.abs() > 1e-3));
}

#[test]
fn the_fused_log_likelihood_is_log_softmax_at_the_targets() {
    check_log_likelihood([2, 5, 14], false);
    check_log_likelihood([3, 50, 259], false);
    check_log_likelihood([2, 7, 17], true);
    // Without autodiff.
    let device = Device::flex();
    let x: Tensor<3> =
        Tensor::from_data(TensorData::new(random(2 * 3 * 9, 61), [2, 3, 9]), &device);
    let targets: Tensor<2, Int> =
        Tensor::from_data(TensorData::new(vec![0i64, 8, 4, 1, 2, 7], [2, 3]), &device);
    let written: Tensor<2> = log_softmax(x.clone(), 2)
        .gather(2, targets.clone().unsqueeze_dim(2))
        .squeeze_dim(2);
    assert_close(
        "without autodiff",
        &values(target_log_softmax(x, targets)),
        &values(written),
        1e-6,
    );
}
