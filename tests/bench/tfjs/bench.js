// The TensorFlow.js peer of Mnemo's benchmark model, mirroring tests/bench/torch_ref.py:
// the same GPT-2-style model (pre-LayerNorm with eps 1e-5, exact GELU, causal attention,
// learned positions, tied or untied head) from Mnemo's initial weights (init.safetensors),
// the same instances, order, learning rate per step and AdamW (torch.optim.AdamW's
// semantics: decoupled weight decay on every parameter, bias correction), the same loss
// (mean negative log-likelihood over the scored targets of the batch) and the same timing
// (step 1 is the warm-up, steps 2..N are timed, every loss read back; evaluation is the
// per-sequence surprisal, forward only, in batches of the batch size, after one warm-up
// batch). tests/bench/tfjs_bench.mjs serves this page and calls window.runBench.
//
// Embedding lookups are one-hot products (the vocabulary is tiny, and the wasm backend
// has no UnsortedSegmentSum, the gradient of a gather); the position table is a slice.

const params = new URLSearchParams(location.search);
const BACKEND = params.get('backend') ?? 'wasm';
const NM = '/nm/@tensorflow/';

/** Where the run is, for the driver's log and its error when a backend hangs. */
function stage(what) {
  console.log(`[bench] ${what}`);
}

function loadScript(src) {
  return new Promise((ok, fail) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = ok;
    s.onerror = () => fail(new Error('could not load ' + src));
    document.head.appendChild(s);
  });
}

/** Tensors (Float32Array, shape) and metadata of a safetensors file. */
function parseSafetensors(buf) {
  const view = new DataView(buf);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const meta = header.__metadata__ ?? {};
  delete header.__metadata__;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (info.dtype !== 'F32') throw new Error(`${name}: expected F32, found ${info.dtype}`);
    const [a, b] = info.data_offsets;
    // Copy: the data need not be 4-byte aligned within the file.
    const data = new Float32Array(buf.slice(8 + n + a, 8 + n + b));
    tensors[name] = { data, shape: info.shape };
  }
  return { tensors, meta };
}

/** Inputs, targets, 0/1 mask of scored targets and their count, as torch_ref.py's batch. */
function makeBatch(instances, ids, pad) {
  const rows = ids.map((i) => instances[i]);
  const t = Math.max(rows.length ? Math.max(...rows.map((r) => r.length)) : 2, 2) - 1;
  const b = rows.length;
  const inputs = new Int32Array(b * t).fill(pad);
  const targets = new Int32Array(b * t).fill(pad);
  const mask = new Float32Array(b * t);
  let n = 0;
  rows.forEach((r, i) => {
    for (let j = 0; j < r.length - 1 && j < t; j++) {
      inputs[i * t + j] = r[j];
      targets[i * t + j] = r[j + 1];
      mask[i * t + j] = 1;
    }
    n += Math.max(r.length - 1, 0);
  });
  return { b, t, inputs, targets, mask, n };
}

export async function runBench({
  steps, budgetS = Infinity, evalBudgetS = Infinity, threads = 2, swiftshaderSteps = 2,
} = {}) {
  const out = { backend: BACKEND };
  await loadScript(NM + 'tfjs/dist/tf.min.js');
  const tf = window.tf;
  out.hardware_concurrency = navigator.hardwareConcurrency;
  if (BACKEND === 'wasm') {
    // tfjs-wasm caps its thread pool at navigator.hardwareConcurrency / 2 (it assumes two
    // logical cores per physical one), one thread on this 2-core machine whatever
    // setThreadsCount asks; show it twice the threads wanted so that the cap allows them.
    if (threads * 2 > navigator.hardwareConcurrency) {
      Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => threads * 2, configurable: true });
      out.hardware_concurrency_shown_to_tfjs = threads * 2;
    }
    await loadScript(NM + 'tfjs-backend-wasm/dist/tf-backend-wasm.min.js');
    tf.wasm.setWasmPaths(NM + 'tfjs-backend-wasm/dist/');
    tf.wasm.setThreadsCount(threads);
  } else if (BACKEND === 'webgpu') {
    await loadScript(NM + 'tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js');
  }
  stage(`initialising ${BACKEND}`);
  if (!(await tf.setBackend(BACKEND))) throw new Error(`tf.setBackend('${BACKEND}') failed`);
  await tf.ready();
  if (tf.getBackend() !== BACKEND) throw new Error(`backend is ${tf.getBackend()}, not ${BACKEND}`);
  out.tfjs_version = tf.version.tfjs;
  out.cross_origin_isolated = self.crossOriginIsolated === true;
  if (BACKEND === 'wasm') {
    out.threads = tf.wasm.getThreadsCount();
    out.wasm_simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    out.wasm_multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  } else {
    out.threads = null;
  }
  if (BACKEND === 'webgl') {
    out.webgl_version = tf.env().getNumber('WEBGL_VERSION');
    out.webgl_float_precision = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? 32 : 16;
    try {
      const gl = document.createElement('canvas').getContext('webgl2');
      const ext = gl?.getExtension('WEBGL_debug_renderer_info');
      out.adapter = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl?.getParameter(gl.RENDERER);
    } catch { /* informational only */ }
  }
  if (BACKEND === 'webgpu') {
    const info = (await navigator.gpu.requestAdapter())?.info ?? {};
    out.adapter = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  }
  // SwiftShader emulates the GPU on the CPU (about 20 s a step with WebGL, 110 s with
  // WebGPU here): fewer steps there.
  out.swiftshader = /swiftshader/i.test(out.adapter ?? '');

  stage('loading bench.json and init.safetensors');
  const [spec, raw] = await Promise.all([
    fetch('/init/bench.json').then((r) => r.json()),
    fetch('/init/init.safetensors').then((r) => r.arrayBuffer()),
  ]);
  const { tensors: w, meta } = parseSafetensors(raw);
  const config = JSON.parse(meta['mnemo.config']);
  const vocab = Number(meta['mnemo.vocab']);
  const d = config.d_model;
  const heads = config.n_heads;
  const hd = d / heads;
  const tied = config.tied_head ?? true;
  const { instances, pad, batch_size: bsz, order, lr, eval_ids: evalIds } = spec;
  const opt = spec.optimizer;
  let nSteps = Math.min(steps ?? order.length, order.length);
  out.steps_requested = nSteps;
  if (out.swiftshader && swiftshaderSteps < nSteps) {
    out.steps_note = `${swiftshaderSteps} steps, not ${nSteps}: SwiftShader, no GPU (MNEMO_BENCH_TFJS_SWIFTSHADER_STEPS)`;
    nSteps = Math.max(2, swiftshaderSteps);
  }
  if (nSteps < 2) throw new Error('at least 2 steps (one warm-up) are needed');

  // Parameters, in Mnemo's layout (linear weights [in, out]): x @ W + b.
  const names = Object.keys(w).sort();
  const vars = {};
  for (const name of names) vars[name] = tf.variable(tf.tensor(w[name].data, w[name].shape, 'float32'), true, name);
  const P = (name) => vars[name];
  const varList = names.map((n) => vars[n]);
  out.parameters = names.reduce((s, n) => s + w[n].data.length, 0);

  const causal = {};
  function causalBias(t) {
    if (!causal[t]) {
      const m = new Float32Array(t * t);
      for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9;
      causal[t] = tf.keep(tf.tensor2d(m, [t, t]));
    }
    return causal[t];
  }
  const linear = (x, name) => tf.add(tf.matMul(x, P(name + '.weight')), P(name + '.bias'));
  function layerNorm(x, name) {
    const { mean, variance } = tf.moments(x, -1, true);
    const xn = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    return tf.add(tf.mul(xn, P(name + '.weight')), P(name + '.bias'));
  }
  const gelu = (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));

  /** Logits [b * t, vocab] of inputs (int32 [b * t]). */
  function forward(inputs, b, t) {
    const onehot = tf.oneHot(inputs, vocab).toFloat();
    let x = tf.matMul(onehot, P('wte.weight')); // [b*t, d]
    const pos = tf.slice(P('wpe.weight'), [0, 0], [t, d]);
    x = tf.reshape(tf.add(tf.reshape(x, [b, t, d]), pos), [b * t, d]);
    const bias = causalBias(t);
    const split = (z) => tf.transpose(tf.reshape(z, [b, t, heads, hd]), [0, 2, 1, 3]);
    for (let i = 0; i < config.n_layers; i++) {
      const p = `h.${i}.`;
      const qkv = linear(layerNorm(x, p + 'ln_1'), p + 'attn.c_attn');
      const [q, k, v] = tf.split(qkv, 3, 1).map(split); // [b, heads, t, hd]
      let att = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)); // [b, heads, t, t]
      att = tf.softmax(tf.add(att, bias), -1);
      const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [b * t, d]);
      x = tf.add(x, linear(y, p + 'attn.c_proj'));
      const h = gelu(linear(layerNorm(x, p + 'ln_2'), p + 'mlp.c_fc'));
      x = tf.add(x, linear(h, p + 'mlp.c_proj'));
    }
    x = layerNorm(x, 'ln_f');
    return tied ? tf.matMul(x, P('wte.weight'), false, true) : tf.matMul(x, P('lm_head.weight'));
  }
  /** Negative log-likelihood of each target, [b, t]. */
  function tokenNll(batch) {
    const { b, t } = batch;
    const logits = forward(tf.tensor1d(batch.inputs, 'int32'), b, t);
    const logp = tf.logSoftmax(logits, -1);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(batch.targets, 'int32'), vocab).toFloat()), -1);
    return tf.reshape(tf.neg(picked), [b, t]);
  }
  /** Mean surprisal (nats/token) of each sequence over its scored targets. */
  function surprisal(batch) {
    return tf.tidy(() => {
      const mask = tf.tensor2d(batch.mask, [batch.b, batch.t]);
      const nll = tokenNll(batch);
      return tf.div(tf.sum(tf.mul(nll, mask), 1), tf.maximum(tf.sum(mask, 1), 1));
    });
  }

  // The check: one batch's per-sequence surprisal under the initial weights.
  stage('surprisal check under the initial weights');
  const s0 = surprisal(makeBatch(instances, evalIds.slice(0, bsz), pad));
  const s0v = await s0.data();
  s0.dispose();
  const mnemoS0 = spec.mnemo_first_eval_surprisal;
  out.eval_surprisal_max_abs_diff = mnemoS0 ? Math.max(...mnemoS0.map((x, i) => Math.abs(x - s0v[i]))) : null;

  // AdamW as torch.optim.AdamW (what torch_ref.py uses): decoupled weight decay on every
  // parameter, then Adam with bias correction; the step's scalars in double precision.
  const b1 = opt.beta_1, b2 = opt.beta_2, eps = opt.epsilon, wd = opt.weight_decay;
  const m = varList.map((v) => tf.variable(tf.zerosLike(v), false));
  const vv = varList.map((v) => tf.variable(tf.zerosLike(v), false));
  function adamw(grads, step, rate) {
    const bc1 = 1 - Math.pow(b1, step);
    const bc2sqrt = Math.sqrt(1 - Math.pow(b2, step));
    const stepSize = rate / bc1;
    tf.tidy(() => {
      varList.forEach((p, i) => {
        const g = grads[p.name];
        const decayed = tf.mul(p, 1 - rate * wd);
        const mi = tf.add(tf.mul(m[i], b1), tf.mul(g, 1 - b1));
        const vi = tf.add(tf.mul(vv[i], b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(vi), bc2sqrt), eps);
        m[i].assign(mi);
        vv[i].assign(vi);
        p.assign(tf.sub(decayed, tf.mul(tf.div(mi, denom), stepSize)));
      });
    });
  }
  const batches = order.slice(0, nSteps).map((ids) => makeBatch(instances, ids, pad));
  function trainStep(step) {
    const batch = batches[step - 1];
    return tf.tidy(() => {
      const mask = tf.tensor2d(batch.mask, [batch.b, batch.t]);
      const { value, grads } = tf.variableGrads(
        () => tf.div(tf.sum(tf.mul(tokenNll(batch), mask)), Math.max(batch.n, 1)), varList);
      adamw(grads, step, lr[step - 1]);
      return value;
    });
  }

  // Training: step 1 is the warm-up, then steps 2..N are timed (or until the budget is spent).
  const losses = [];
  const stepMs = [];
  let start = null;
  let timedTokens = 0;
  let done = 0;
  for (let step = 1; step <= nSteps; step++) {
    if (step === 2) start = performance.now();
    const t0 = performance.now();
    const loss = trainStep(step);
    losses.push((await loss.data())[0]);
    stage(`step ${step}/${nSteps}: loss ${losses[step - 1]}, ${(performance.now() - t0).toFixed(0)} ms`);
    loss.dispose();
    stepMs.push(performance.now() - t0);
    done = step;
    if (step >= 2) timedTokens += batches[step - 1].n;
    if (step >= 2 && (performance.now() - start) / 1000 > budgetS) break;
  }
  const trainS = (performance.now() - start) / 1000;
  out.steps = done;
  out.timed_steps = done - 1;
  out.capped = done < nSteps;
  out.losses = losses;
  out.first_step_loss = losses[0];
  out.step_ms = stepMs;
  out.tokens_per_step = timedTokens / (done - 1);
  out.ms_per_step = (trainS * 1000) / (done - 1);
  out.train_tokens_per_s = timedTokens / trainS;

  // Evaluation: one warm-up batch, then every evaluation sequence (or until the budget is spent).
  const evalBatches = [];
  for (let i = 0; i < evalIds.length; i += bsz) evalBatches.push(makeBatch(instances, evalIds.slice(i, i + bsz), pad));
  stage('evaluation');
  const warm = surprisal(evalBatches[0]);
  await warm.data();
  warm.dispose();
  const e0 = performance.now();
  let sequences = 0;
  for (const batch of evalBatches) {
    const s = surprisal(batch);
    await s.data();
    s.dispose();
    sequences += batch.b;
    if ((performance.now() - e0) / 1000 > evalBudgetS) break;
  }
  const evalS = (performance.now() - e0) / 1000;
  out.eval_sequences = sequences;
  out.eval_sequences_total = evalIds.length;
  out.eval_capped = sequences < evalIds.length;
  out.eval_batch = bsz;
  out.eval_seconds = evalS;
  out.eval_sequences_per_s = sequences / evalS;
  out.num_tensors_after = tf.memory().numTensors;
  return out;
}

window.runBench = runBench;
window.benchReady = true;
