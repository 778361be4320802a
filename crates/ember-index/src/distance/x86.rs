//! The x86-64 kernels: AVX-512 (16 lanes, masked tails) and AVX2+FMA (8 lanes, scalar tails)
//! bodies of [`super::Kernels`].
//!
//! Each `#[target_feature]` function is reachable only through a safe wrapper whose pointer
//! [`kernels`] hands out after checking the features it was compiled for, so no caller can run
//! an instruction its CPU lacks. Kernels used row after row (`*_many`) inline a shared body into
//! one feature-compiled loop instead of calling per row.
// std::arch intrinsics are unsafe to call; every call sits behind a run-time feature check.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use half::f16;

use super::{scalar, Isa, Kernels};

/// Wrap a `#[target_feature]` function in a safe one with the same signature.
macro_rules! checked {
    ($safe:ident => $inner:ident ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        fn $safe($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: only `kernels` names this function, after checking the CPU features
            // `$inner` is compiled for.
            unsafe { $inner($($arg),*) }
        }
    };
}

pub(super) fn kernels(isa: Isa) -> Option<Kernels> {
    let avx512 = is_x86_feature_detected!("avx512f");
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let vnni = avx512 && is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni");
    let popcnt = is_x86_feature_detected!("popcnt");
    let vpopcnt = avx512 && popcnt && is_x86_feature_detected!("avx512vpopcntdq");
    let f16c = is_x86_feature_detected!("f16c");
    let mut k = match isa {
        Isa::Scalar => return Some(Kernels::SCALAR),
        Isa::Avx512 if avx512 => Kernels {
            isa,
            dot: dot_avx512,
            cosine: cosine_avx512,
            l2_sq: l2_sq_avx512,
            l1: l1_avx512,
            dot_rows: dot_rows_avx512,
            l2_sq_rows: l2_sq_rows_avx512,
            l1_rows: l1_rows_avx512,
            dot_f16: dot_f16_avx512,
            l2_sq_f16: l2_sq_f16_avx512,
            ..Kernels::SCALAR
        },
        Isa::Avx2 if avx2 => Kernels {
            isa,
            dot: dot_avx2,
            cosine: cosine_avx2,
            l2_sq: l2_sq_avx2,
            l1: l1_avx2,
            dot_rows: dot_rows_avx2,
            l2_sq_rows: l2_sq_rows_avx2,
            l1_rows: l1_rows_avx2,
            ..Kernels::SCALAR
        },
        _ => return None,
    };
    if isa == Isa::Avx2 && f16c {
        k.dot_f16 = dot_f16_avx2;
        k.l2_sq_f16 = l2_sq_f16_avx2;
    }
    if isa == Isa::Avx512 && vnni {
        (k.int8_path, k.dot_i8, k.dot_i8_many) = ("avx512-vnni", dot_i8_vnni, dot_i8_many_vnni);
    } else if avx2 {
        (k.int8_path, k.dot_i8, k.dot_i8_many) = ("avx2", dot_i8_avx2, dot_i8_many_avx2);
    }
    if isa == Isa::Avx512 && vpopcnt {
        (k.hamming_path, k.hamming, k.hamming_many) = ("avx512-vpopcntdq", hamming_vpopcnt, hamming_many_vpopcnt);
    } else if popcnt {
        (k.hamming_path, k.hamming, k.hamming_many) = ("popcnt", hamming_popcnt, hamming_many_popcnt);
    }
    Some(k)
}

#[inline(always)]
pub(super) fn prefetch<T>(v: &[T], lines: usize) {
    let p = v.as_ptr().cast::<i8>();
    let bytes = std::mem::size_of_val(v);
    let mut off = 0;
    while off < bytes && off < lines * 64 {
        // SAFETY: a prefetch never faults and reads nothing; the address is inside `v`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        off += 64;
    }
}

// ---------------------------------------------------------------------------------------------
// f32, AVX-512

/// Lanes left over after the 16-wide loop, as a load mask.
#[inline(always)]
fn mask16(rest: usize) -> __mmask16 {
    ((1u32 << rest) - 1) as __mmask16
}

checked!(dot_avx512 => dot_avx512_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512_tf(a: &[f32], b: &[f32]) -> f32 {
    dot_avx512_body(a, b)
}

checked!(dot_rows_avx512 => dot_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx512f")]
unsafe fn dot_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = dot_avx512_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn dot_avx512_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (j, acc) in s.iter_mut().enumerate() {
            let o = i + 16 * j;
            *acc = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(o)), _mm512_loadu_ps(pb.add(o)), *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        s[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s[0]);
        i += 16;
    }
    if i < n {
        let m = mask16(n - i);
        s[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)), s[1]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])))
}

checked!(l2_sq_avx512 => l2_sq_avx512_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn l2_sq_avx512_tf(a: &[f32], b: &[f32]) -> f32 {
    l2_sq_avx512_body(a, b)
}

checked!(l2_sq_rows_avx512 => l2_sq_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx512f")]
unsafe fn l2_sq_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = l2_sq_avx512_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn l2_sq_avx512_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (j, acc) in s.iter_mut().enumerate() {
            let o = i + 16 * j;
            let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(o)), _mm512_loadu_ps(pb.add(o)));
            *acc = _mm512_fmadd_ps(d, d, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
        s[0] = _mm512_fmadd_ps(d, d, s[0]);
        i += 16;
    }
    if i < n {
        let m = mask16(n - i);
        let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)));
        s[1] = _mm512_fmadd_ps(d, d, s[1]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])))
}

checked!(l1_avx512 => l1_avx512_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn l1_avx512_tf(a: &[f32], b: &[f32]) -> f32 {
    l1_avx512_body(a, b)
}

checked!(l1_rows_avx512 => l1_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx512f")]
unsafe fn l1_rows_avx512_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = l1_avx512_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn l1_avx512_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s0 = _mm512_setzero_ps();
    let mut s1 = _mm512_setzero_ps();
    let mut i = 0;
    while i + 32 <= n {
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)))));
        let (x, y) = (_mm512_loadu_ps(pa.add(i + 16)), _mm512_loadu_ps(pb.add(i + 16)));
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(x, y)));
        i += 32;
    }
    while i < n {
        let m = mask16((n - i).min(16));
        let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)));
        s0 = _mm512_add_ps(s0, _mm512_abs_ps(d));
        i += 16;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

checked!(cosine_avx512 => cosine_avx512_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn cosine_avx512_tf(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut ab, mut aa, mut bb) = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i < n {
        let m = mask16((n - i).min(16));
        let (x, y) = (_mm512_maskz_loadu_ps(m, pa.add(i)), _mm512_maskz_loadu_ps(m, pb.add(i)));
        ab = _mm512_fmadd_ps(x, y, ab);
        aa = _mm512_fmadd_ps(x, x, aa);
        bb = _mm512_fmadd_ps(y, y, bb);
        i += 16;
    }
    let (ab, aa, bb) = (_mm512_reduce_add_ps(ab), _mm512_reduce_add_ps(aa), _mm512_reduce_add_ps(bb));
    ab / (aa.sqrt().max(1e-8) * bb.sqrt().max(1e-8))
}

// ---------------------------------------------------------------------------------------------
// f16 stored vectors against an f32 query, AVX-512 (vcvtph2ps is AVX-512F)

checked!(dot_f16_avx512 => dot_f16_avx512_tf(a: &[f16], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn dot_f16_avx512_tf(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    while i + 32 <= n {
        let x0 = _mm512_cvtph_ps(_mm256_loadu_si256(pa.add(i).cast()));
        let x1 = _mm512_cvtph_ps(_mm256_loadu_si256(pa.add(i + 16).cast()));
        s0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(pb.add(i)), s0);
        s1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(pb.add(i + 16)), s1);
        i += 32;
    }
    while i + 16 <= n {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(pa.add(i).cast())), _mm512_loadu_ps(pb.add(i)), s0);
        i += 16;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) + scalar::dot_f16(&a[i..n], &b[i..n])
}

checked!(l2_sq_f16_avx512 => l2_sq_f16_avx512_tf(a: &[f16], b: &[f32]) -> f32);
#[target_feature(enable = "avx512f")]
unsafe fn l2_sq_f16_avx512_tf(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s0 = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let d = _mm512_sub_ps(_mm512_cvtph_ps(_mm256_loadu_si256(pa.add(i).cast())), _mm512_loadu_ps(pb.add(i)));
        s0 = _mm512_fmadd_ps(d, d, s0);
        i += 16;
    }
    _mm512_reduce_add_ps(s0) + scalar::l2_sq_f16(&a[i..n], &b[i..n])
}

// ---------------------------------------------------------------------------------------------
// f32 and f16, AVX2 + FMA (+ F16C)

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
}

checked!(dot_avx2 => dot_avx2_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_tf(a: &[f32], b: &[f32]) -> f32 {
    dot_avx2_body(a, b)
}

checked!(dot_rows_avx2 => dot_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = dot_avx2_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn dot_avx2_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in s.iter_mut().enumerate() {
            let o = i + 8 * j;
            *acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
        i += 8;
    }
    hsum256(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]))) + scalar::dot(&a[i..n], &b[i..n])
}

checked!(l2_sq_avx2 => l2_sq_avx2_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_sq_avx2_tf(a: &[f32], b: &[f32]) -> f32 {
    l2_sq_avx2_body(a, b)
}

checked!(l2_sq_rows_avx2 => l2_sq_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_sq_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = l2_sq_avx2_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn l2_sq_avx2_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in s.iter_mut().enumerate() {
            let o = i + 8 * j;
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)));
            *acc = _mm256_fmadd_ps(d, d, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        s[0] = _mm256_fmadd_ps(d, d, s[0]);
        i += 8;
    }
    hsum256(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]))) + scalar::l2_sq(&a[i..n], &b[i..n])
}

checked!(l1_avx2 => l1_avx2_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma")]
unsafe fn l1_avx2_tf(a: &[f32], b: &[f32]) -> f32 {
    l1_avx2_body(a, b)
}

checked!(l1_rows_avx2 => l1_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]));
#[target_feature(enable = "avx2,fma")]
unsafe fn l1_rows_avx2_tf(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = q.len();
    for (&r, o) in rows.iter().zip(out) {
        let start = r as usize * dim;
        *o = l1_avx2_body(q, &data[start..start + dim]);
    }
}

#[inline(always)]
unsafe fn l1_avx2_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        s0 = _mm256_add_ps(
            s0,
            _mm256_and_ps(abs, _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)))),
        );
        let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)));
        s1 = _mm256_add_ps(s1, _mm256_and_ps(abs, d));
        i += 16;
    }
    hsum256(_mm256_add_ps(s0, s1)) + scalar::l1(&a[i..n], &b[i..n])
}

checked!(cosine_avx2 => cosine_avx2_tf(a: &[f32], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma")]
unsafe fn cosine_avx2_tf(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut ab, mut aa, mut bb) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        ab = _mm256_fmadd_ps(x, y, ab);
        aa = _mm256_fmadd_ps(x, x, aa);
        bb = _mm256_fmadd_ps(y, y, bb);
        i += 8;
    }
    let (ta, tb) = (&a[i..n], &b[i..n]);
    let ab = hsum256(ab) + scalar::dot(ta, tb);
    let aa = hsum256(aa) + scalar::dot(ta, ta);
    let bb = hsum256(bb) + scalar::dot(tb, tb);
    ab / (aa.sqrt().max(1e-8) * bb.sqrt().max(1e-8))
}

checked!(dot_f16_avx2 => dot_f16_avx2_tf(a: &[f16], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2_tf(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 16 <= n {
        let x0 = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i).cast()));
        let x1 = _mm256_cvtph_ps(_mm_loadu_si128(pa.add(i + 8).cast()));
        s0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(pb.add(i)), s0);
        s1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(pb.add(i + 8)), s1);
        i += 16;
    }
    while i + 8 <= n {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(pa.add(i).cast())), _mm256_loadu_ps(pb.add(i)), s0);
        i += 8;
    }
    hsum256(_mm256_add_ps(s0, s1)) + scalar::dot_f16(&a[i..n], &b[i..n])
}

checked!(l2_sq_f16_avx2 => l2_sq_f16_avx2_tf(a: &[f16], b: &[f32]) -> f32);
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn l2_sq_f16_avx2_tf(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        let d = _mm256_sub_ps(_mm256_cvtph_ps(_mm_loadu_si128(pa.add(i).cast())), _mm256_loadu_ps(pb.add(i)));
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    hsum256(s0) + scalar::l2_sq_f16(&a[i..n], &b[i..n])
}

// ---------------------------------------------------------------------------------------------
// i8 · i8 → i32

/// AVX-512 VNNI multiplies unsigned by signed bytes (`vpdpbusd`), so `a` is shifted to unsigned
/// (`a + 128`, a sign-bit flip) and `128 · Σb` (summed by a second `vpdpbusd` against ones) is
/// taken off at the end. The shifted sum stays in `i32` for lengths up to 65,536.
#[inline(always)]
unsafe fn dot_i8_vnni_body(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let flip = _mm512_set1_epi8(i8::MIN);
    let ones = _mm512_set1_epi8(1);
    let (mut acc, mut bsum) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut i = 0;
    while i + 64 <= n {
        let x = _mm512_xor_si512(_mm512_loadu_si512(pa.add(i).cast()), flip);
        let y = _mm512_loadu_si512(pb.add(i).cast());
        acc = _mm512_dpbusd_epi32(acc, x, y);
        bsum = _mm512_dpbusd_epi32(bsum, ones, y);
        i += 64;
    }
    if i < n {
        let m: __mmask64 = (1u64 << (n - i)) - 1;
        // Masked-out lanes load 0: `a` becomes 128 there but meets a zero `b`.
        let x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, pa.add(i)), flip);
        let y = _mm512_maskz_loadu_epi8(m, pb.add(i));
        acc = _mm512_dpbusd_epi32(acc, x, y);
        bsum = _mm512_dpbusd_epi32(bsum, ones, y);
    }
    _mm512_reduce_add_epi32(acc).wrapping_sub(_mm512_reduce_add_epi32(bsum).wrapping_mul(128))
}

checked!(dot_i8_vnni => dot_i8_vnni_tf(a: &[i8], b: &[i8]) -> i32);
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_i8_vnni_tf(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_vnni_body(a, b)
}

checked!(dot_i8_many_vnni => dot_i8_many_vnni_tf(q: &[i8], codes: &[i8], out: &mut [i32]));
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_i8_many_vnni_tf(q: &[i8], codes: &[i8], out: &mut [i32]) {
    if q.is_empty() {
        return out.fill(0);
    }
    for (row, o) in codes.chunks_exact(q.len()).zip(out) {
        *o = dot_i8_vnni_body(q, row);
    }
}

/// AVX2: sign-extend 16 bytes to 16 `i16`, `vpmaddwd` them into 8 `i32` pair sums.
#[inline(always)]
unsafe fn dot_i8_avx2_body(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let widen = |p: *const i8| _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
    let mut i = 0;
    while i + 32 <= n {
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(widen(pa.add(i)), widen(pb.add(i))));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(widen(pa.add(i + 16)), widen(pb.add(i + 16))));
        i += 32;
    }
    while i + 16 <= n {
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(widen(pa.add(i)), widen(pb.add(i))));
        i += 16;
    }
    let s = _mm256_add_epi32(s0, s1);
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s) + scalar::dot_i8(&a[i..n], &b[i..n])
}

checked!(dot_i8_avx2 => dot_i8_avx2_tf(a: &[i8], b: &[i8]) -> i32);
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2_tf(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_avx2_body(a, b)
}

checked!(dot_i8_many_avx2 => dot_i8_many_avx2_tf(q: &[i8], codes: &[i8], out: &mut [i32]));
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_many_avx2_tf(q: &[i8], codes: &[i8], out: &mut [i32]) {
    if q.is_empty() {
        return out.fill(0);
    }
    for (row, o) in codes.chunks_exact(q.len()).zip(out) {
        *o = dot_i8_avx2_body(q, row);
    }
}

// ---------------------------------------------------------------------------------------------
// Hamming on packed u64 words

/// `popcnt` per word, four independent sums (codes are short: 6 words for 384 dimensions).
#[inline(always)]
fn hamming_popcnt_body(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0u32; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: u32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| (x ^ y).count_ones()).sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..4 {
            s[l] += (x[l] ^ y[l]).count_ones();
        }
    }
    s.iter().sum::<u32>() + tail
}

checked!(hamming_popcnt => hamming_popcnt_tf(a: &[u64], b: &[u64]) -> u32);
#[target_feature(enable = "popcnt")]
unsafe fn hamming_popcnt_tf(a: &[u64], b: &[u64]) -> u32 {
    hamming_popcnt_body(a, b)
}

checked!(hamming_many_popcnt => hamming_many_popcnt_tf(q: &[u64], codes: &[u64], out: &mut [u32]));
#[target_feature(enable = "popcnt")]
unsafe fn hamming_many_popcnt_tf(q: &[u64], codes: &[u64], out: &mut [u32]) {
    if q.is_empty() {
        return out.fill(0);
    }
    for (row, o) in codes.chunks_exact(q.len()).zip(out) {
        *o = hamming_popcnt_body(q, row);
    }
}

/// VPOPCNTDQ: eight words per step, the tail by a masked load.
#[inline(always)]
unsafe fn hamming_vpopcnt_body(a: &[u64], b: &[u64]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    while i + 8 <= n {
        let x = _mm512_xor_si512(_mm512_loadu_si512(pa.add(i).cast()), _mm512_loadu_si512(pb.add(i).cast()));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
        i += 8;
    }
    if i < n {
        let m = ((1u32 << (n - i)) - 1) as __mmask8;
        let x = _mm512_xor_si512(
            _mm512_maskz_loadu_epi64(m, pa.add(i).cast()),
            _mm512_maskz_loadu_epi64(m, pb.add(i).cast()),
        );
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
    }
    _mm512_reduce_add_epi64(acc) as u32
}

checked!(hamming_vpopcnt => hamming_vpopcnt_tf(a: &[u64], b: &[u64]) -> u32);
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn hamming_vpopcnt_tf(a: &[u64], b: &[u64]) -> u32 {
    hamming_vpopcnt_body(a, b)
}

checked!(hamming_many_vpopcnt => hamming_many_vpopcnt_tf(q: &[u64], codes: &[u64], out: &mut [u32]));
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
unsafe fn hamming_many_vpopcnt_tf(q: &[u64], codes: &[u64], out: &mut [u32]) {
    if q.is_empty() {
        return out.fill(0);
    }
    // Short codes: scalar popcnt per word beats a masked vector load per row.
    if q.len() < 8 {
        for (row, o) in codes.chunks_exact(q.len()).zip(out) {
            *o = hamming_popcnt_body(q, row);
        }
        return;
    }
    for (row, o) in codes.chunks_exact(q.len()).zip(out) {
        *o = hamming_vpopcnt_body(q, row);
    }
}
