//! Vectorisable CPU kernels for the fast forward: exp, exact-GELU (erf), softmax,
//! residual + LayerNorm. Each public kernel is compiled twice — portable, and with
//! AVX2+FMA enabled — and picks one at run time, so one binary runs everywhere and
//! still uses the wide registers where the CPU has them.

#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    // Cephes-style expf: 2^n · p(r) with r = x − n·ln2 in [−ln2/2, ln2/2]; relative
    // error ~2e-7, and no libm call, so loops over it vectorise.
    const MAGIC: f32 = 12582912.0; // 1.5 · 2^23: adding and subtracting rounds to an integer
    let x = x.clamp(-87.3, 88.3);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    // The integer n sits in t's low mantissa bits: read it with integer arithmetic
    // (a float-to-int `as` cast saturates, which compilers do not vectorise).
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * 0.693_359_4 - n * (-2.121_944_4e-4);
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
}

#[inline(always)]
fn gelu_one(x: f32) -> f32 {
    // Exact GELU 0.5·x·(1 + erf(x/√2)) with erf from Abramowitz & Stegun 7.1.26
    // (absolute error ≤ 1.5e-7), written branch-free so it vectorises.
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_72) * t + 0.254_829_6) * t;
    let erf_abs = 1.0 - poly * exp_approx(-a * a);
    let erf = erf_abs.copysign(z);
    0.5 * x * (1.0 + erf)
}

#[inline(always)]
fn gelu_generic(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = gelu_one(*x);
    }
}

#[inline(always)]
fn softmax_generic(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in row.iter_mut() {
        *x = exp_approx(*x - max);
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[inline(always)]
fn add_layer_norm_generic(x: &mut [f32], residual: &[f32], w: &[f32], b: &[f32], eps: f32) {
    let h = x.len() as f32;
    let mut sum = 0.0f32;
    for (a, r) in x.iter_mut().zip(residual) {
        *a += *r;
        sum += *a;
    }
    let mean = sum / h;
    let mut var = 0.0f32;
    for a in x.iter() {
        let d = *a - mean;
        var += d * d;
    }
    let inv = 1.0 / (var / h + eps).sqrt();
    for ((a, w), b) in x.iter_mut().zip(w).zip(b) {
        *a = (*a - mean) * inv * w + b;
    }
}

macro_rules! dispatch {
    ($name:ident, $generic:ident, $avx:ident, ($($arg:ident : $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx($($arg: $ty),*) {
            $generic($($arg),*)
        }

        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    unsafe { $avx($($arg),*) };
                    return;
                }
            }
            $generic($($arg),*)
        }
    };
}

dispatch!(gelu, gelu_generic, gelu_avx2, (v: &mut [f32]));
dispatch!(softmax, softmax_generic, softmax_avx2, (row: &mut [f32]));
dispatch!(add_layer_norm, add_layer_norm_generic, add_layer_norm_avx2, (x: &mut [f32], residual: &[f32], w: &[f32], b: &[f32], eps: f32));

/// LayerNorm without a residual (the embedding output).
pub fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let zeros = vec![0f32; x.len()];
    add_layer_norm(x, &zeros, w, b, eps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_gelu_are_accurate() {
        for i in -2000..2000 {
            let x = i as f32 / 100.0;
            let e = exp_approx(x);
            assert!(((e - x.exp()) / x.exp()).abs() < 1e-6, "exp({x})");
            let g = gelu_one(x);
            let exact = 0.5 * x as f64 * (1.0 + erf64(x as f64 / 2f64.sqrt()));
            assert!((g as f64 - exact).abs() < 2e-6 * (1.0 + exact.abs()), "gelu({x}) = {g} vs {exact}");
        }
    }

    // erf by its Maclaurin series / continued fraction, in f64, as the reference.
    fn erf64(x: f64) -> f64 {
        if x.abs() > 5.0 {
            return x.signum();
        }
        let mut sum = x;
        let mut term = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// The dispatched kernels (AVX2 where the CPU has it) against the portable ones.
    #[test]
    fn simd_kernels_match_the_portable_ones() {
        let mut rng = crate::util::Rng(5);
        let mut v: Vec<f32> = (0..1003).map(|_| (rng.next_u64() % 20001) as f32 / 1000.0 - 10.0).collect();
        let (mut a, mut b) = (v.clone(), v.clone());
        gelu(&mut a);
        gelu_generic(&mut b);
        a.iter()
            .zip(&b)
            .for_each(|(x, y)| assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "gelu {x} vs {y}"));
        let (mut a, mut b) = (v[..777].to_vec(), v[..777].to_vec());
        softmax(&mut a);
        softmax_generic(&mut b);
        a.iter()
            .zip(&b)
            .for_each(|(x, y)| assert!((x - y).abs() <= 1e-6, "softmax {x} vs {y}"));
        let residual: Vec<f32> = v.iter().map(|x| x * 0.5).collect();
        let w: Vec<f32> = (0..v.len()).map(|i| 1.0 + i as f32 * 1e-3).collect();
        let bias: Vec<f32> = (0..v.len()).map(|i| i as f32 * 1e-4).collect();
        let mut b2 = v.clone();
        add_layer_norm(&mut v, &residual, &w, &bias, 1e-12);
        add_layer_norm_generic(&mut b2, &residual, &w, &bias, 1e-12);
        v.iter()
            .zip(&b2)
            .for_each(|(x, y)| assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "layer norm {x} vs {y}"));
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut r = vec![1.0, 2.0, 3.0, -50.0];
        softmax(&mut r);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(r[2] > r[1] && r[1] > r[0]);
    }
}
