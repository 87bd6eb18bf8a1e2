// activation_fns.wgsl — activation functions and their derivatives (a library, no bindings).
//
// Codes (must match core::kernels::Activation::code):
//   0 identity   f(x) = x
//   1 relu       f(x) = max(x, 0)
//   2 leaky_relu f(x) = x > 0 ? x : alpha·x
//   3 elu        f(x) = x > 0 ? x : alpha·(eˣ − 1)
//   4 gelu       f(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))     (tanh form, as PyTorch approximate="tanh")
//   5 sigmoid    f(x) = 1 / (1 + e⁻ˣ)
//   6 tanh       f(x) = tanh(x)
// act_grad returns f'(x), the derivative with respect to the pre-activation x.

const GELU_C: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

// tanh that never overflows: tanh(±15) is ±1 to f32 precision.
fn safe_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

// Stable logistic: never evaluates e^{+large}.
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn act_forward(code: u32, x: f32, alpha: f32) -> f32 {
    switch code {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(alpha * x, x, x > 0.0); }
        case 3u: { return select(alpha * (exp(x) - 1.0), x, x > 0.0); }
        case 4u: {
            let t = safe_tanh(GELU_C * (x + GELU_A * x * x * x));
            return 0.5 * x * (1.0 + t);
        }
        case 5u: { return sigmoid(x); }
        case 6u: { return safe_tanh(x); }
        default: { return x; }
    }
}

fn act_grad(code: u32, x: f32, alpha: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return select(alpha, 1.0, x > 0.0); }
        case 3u: { return select(alpha * exp(x), 1.0, x > 0.0); }
        case 4u: {
            let u = GELU_C * (x + GELU_A * x * x * x);
            let t = safe_tanh(u);
            let du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
        }
        case 5u: {
            let s = sigmoid(x);
            return s * (1.0 - s);
        }
        case 6u: {
            let t = safe_tanh(x);
            return 1.0 - t * t;
        }
        default: { return 1.0; }
    }
}
