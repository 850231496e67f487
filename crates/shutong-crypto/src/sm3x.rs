//! SM3 (GB/T 32905-2016) of many independent messages side by side ("multi-buffer"): sixteen messages
//! are compressed at once, one per 32-bit SIMD lane, so a core hashes several messages in the time one
//! takes. The audit trail's verification checks each link `SM3(h_{i-1} || canonical_i)` against the
//! stored `h_{i-1}`, so its links are independent and fill the lanes.
//!
//! The algorithm is written once, over arrays of sixteen lanes; the compiler turns it into vector
//! instructions. It is compiled three times — for AVX-512, for AVX2 and for the baseline target — and the
//! best one the CPU supports is chosen at run time. Every result is checked against the `sm3` crate by
//! the tests (any lengths, lanes of different lengths).

const LANES: usize = 16;
type V = [u32; LANES];

const IV: [u32; 8] = [0x7380_166f, 0x4914_b2b9, 0x1724_42d7, 0xda8a_0600, 0xa96f_30bc, 0x1631_38aa, 0xe38d_ee4d, 0xb0fb_0e4e];

/// `T_j <<< (j mod 32)`.
const T: [u32; 64] = {
    let mut t = [0u32; 64];
    let mut j = 0;
    while j < 64 {
        let base: u32 = if j < 16 { 0x79cc_4519 } else { 0x7a87_9d8a };
        t[j] = base.rotate_left((j % 32) as u32);
        j += 1;
    }
    t
};

/// One link of a hash chain per item: `out[i] = SM3(prev_i || data_i)` for `links(i) = (prev_i, data_i)`,
/// `i < n`. The same values as [`crate::sm3_chain`], computed sixteen at a time.
pub fn sm3_chain_many<'a>(n: usize, links: impl Fn(usize) -> (&'a [u8; 32], &'a [u8]), out: &mut Vec<[u8; 32]>) {
    out.clear();
    out.reserve(n);
    let mut padded: Vec<Vec<u8>> = (0..LANES).map(|_| Vec::with_capacity(512)).collect();
    let mut start = 0;
    while start < n {
        let lanes = (n - start).min(LANES);
        if lanes < 4 {
            // A few left over: not worth a pass over all the lanes.
            for i in start..start + lanes {
                let (prev, data) = links(i);
                out.push(crate::sm3_chain(prev, data));
            }
            break;
        }
        let mut blocks = [0usize; LANES];
        for (k, buf) in padded.iter_mut().enumerate() {
            buf.clear();
            if k < lanes {
                let (prev, data) = links(start + k);
                buf.extend_from_slice(prev);
                buf.extend_from_slice(data);
                pad(buf);
                blocks[k] = buf.len() / 64;
            }
        }
        let digests = hash_lanes(&padded, &blocks);
        out.extend_from_slice(&digests[..lanes]);
        start += lanes;
    }
}

/// Appends SM3's padding: `0x80`, zeros to 56 mod 64, and the message's length in bits (big-endian).
fn pad(buf: &mut Vec<u8>) {
    let bits = (buf.len() as u64).wrapping_mul(8);
    buf.push(0x80);
    let zeros = (56 + 64 - buf.len() % 64) % 64;
    buf.resize(buf.len() + zeros, 0);
    buf.extend_from_slice(&bits.to_be_bytes());
}

/// Hashes the padded messages of up to sixteen lanes; a lane with no blocks yields nothing useful.
fn hash_lanes(padded: &[Vec<u8>], blocks: &[usize; LANES]) -> [[u8; 32]; LANES] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above; the function has no other requirement.
            #[allow(unsafe_code)]
            return unsafe { hash_lanes_avx512(padded, blocks) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above; the function has no other requirement.
            #[allow(unsafe_code)]
            return unsafe { hash_lanes_avx2(padded, blocks) };
        }
    }
    hash_lanes_generic(padded, blocks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hash_lanes_avx512(padded: &[Vec<u8>], blocks: &[usize; LANES]) -> [[u8; 32]; LANES] {
    hash_lanes_generic(padded, blocks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn hash_lanes_avx2(padded: &[Vec<u8>], blocks: &[usize; LANES]) -> [[u8; 32]; LANES] {
    hash_lanes_generic(padded, blocks)
}

#[inline(always)]
fn hash_lanes_generic(padded: &[Vec<u8>], blocks: &[usize; LANES]) -> [[u8; 32]; LANES] {
    let mut state: [V; 8] = std::array::from_fn(|i| [IV[i]; LANES]);
    let most = blocks.iter().copied().max().unwrap_or(0);
    let mut w = [[0u32; LANES]; 16];
    for b in 0..most {
        for (k, buf) in padded.iter().enumerate().take(LANES) {
            if b < blocks[k] {
                let block = &buf[b * 64..b * 64 + 64];
                for (i, word) in block.chunks_exact(4).enumerate() {
                    w[i][k] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                }
            }
        }
        let before = state;
        compress(&mut state, &w);
        // Lanes whose message has ended keep their digest.
        for k in 0..LANES {
            if b >= blocks[k] {
                for (s, old) in state.iter_mut().zip(&before) {
                    s[k] = old[k];
                }
            }
        }
    }
    let mut out = [[0u8; 32]; LANES];
    for (k, digest) in out.iter_mut().enumerate() {
        for (i, s) in state.iter().enumerate() {
            digest[i * 4..i * 4 + 4].copy_from_slice(&s[k].to_be_bytes());
        }
    }
    out
}

/// One compression per lane (GB/T 32905 §5.3), with the standard's indices: `w[j][k]` is `W_j` of lane
/// `k`. The loops over `k` are what the compiler turns into vector instructions.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn compress(v: &mut [V; 8], block: &[V; 16]) {
    let mut w = [[0u32; LANES]; 68];
    w[..16].copy_from_slice(block);
    for j in 16..68 {
        for k in 0..LANES {
            let x = w[j - 16][k] ^ w[j - 9][k] ^ w[j - 3][k].rotate_left(15);
            w[j][k] = (x ^ x.rotate_left(15) ^ x.rotate_left(23)) ^ w[j - 13][k].rotate_left(7) ^ w[j - 6][k];
        }
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *v;
    for j in 0..64 {
        let t = T[j];
        for k in 0..LANES {
            let a12 = a[k].rotate_left(12);
            let ss1 = a12.wrapping_add(e[k]).wrapping_add(t).rotate_left(7);
            let ss2 = ss1 ^ a12;
            let (ff, gg) = if j < 16 {
                (a[k] ^ b[k] ^ c[k], e[k] ^ f[k] ^ g[k])
            } else {
                ((a[k] & b[k]) | (a[k] & c[k]) | (b[k] & c[k]), ((f[k] ^ g[k]) & e[k]) ^ g[k])
            };
            let tt1 = ff.wrapping_add(d[k]).wrapping_add(ss2).wrapping_add(w[j][k] ^ w[j + 4][k]);
            let tt2 = gg.wrapping_add(h[k]).wrapping_add(ss1).wrapping_add(w[j][k]);
            d[k] = c[k];
            c[k] = b[k].rotate_left(9);
            b[k] = a[k];
            a[k] = tt1;
            h[k] = g[k];
            g[k] = f[k].rotate_left(19);
            f[k] = e[k];
            e[k] = tt2 ^ tt2.rotate_left(9) ^ tt2.rotate_left(17);
        }
    }
    for (s, x) in v.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        for k in 0..LANES {
            s[k] ^= x[k];
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(items: &[([u8; 32], Vec<u8>)]) {
        let mut out = Vec::new();
        sm3_chain_many(items.len(), |i| (&items[i].0, &items[i].1), &mut out);
        assert_eq!(out.len(), items.len());
        for (i, (prev, data)) in items.iter().enumerate() {
            assert_eq!(out[i], crate::sm3_chain(prev, data), "item {i}, {} bytes", data.len());
        }
    }

    /// Every length around the block boundaries, in every lane, with lanes of different lengths.
    #[test]
    fn agrees_with_sm3_at_block_boundaries() {
        let items: Vec<([u8; 32], Vec<u8>)> =
            (0..300usize).map(|len| ([len as u8; 32], (0..len).map(|i| (i * 7 + len) as u8).collect())).collect();
        check(&items);
        for n in 0..40 {
            check(&items[..n]);
        }
    }

    /// GB/T 32905-2016 Appendix A through the lanes: "abc" after an empty prefix is not expressible (the
    /// prefix is 32 bytes), so the vectors are checked as `prev || data` split at 32.
    #[test]
    fn standard_vector_through_lanes() {
        let message = "abcd".repeat(16);
        let prev: [u8; 32] = message.as_bytes()[..32].try_into().unwrap();
        let items: Vec<([u8; 32], Vec<u8>)> = (0..17).map(|_| (prev, message.as_bytes()[32..].to_vec())).collect();
        let mut out = Vec::new();
        sm3_chain_many(items.len(), |i| (&items[i].0, &items[i].1), &mut out);
        for d in out {
            assert_eq!(hex::encode(d), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
        }
    }

    /// Each build (AVX-512, AVX2, baseline) on its own, whichever the dispatcher would pick here.
    #[test]
    fn every_build_agrees() {
        let items: Vec<([u8; 32], Vec<u8>)> = (0..LANES).map(|k| ([k as u8; 32], vec![k as u8; 40 + 37 * k])).collect();
        let mut padded: Vec<Vec<u8>> = Vec::new();
        let mut blocks = [0usize; LANES];
        for (k, (prev, data)) in items.iter().enumerate() {
            let mut buf = prev.to_vec();
            buf.extend_from_slice(data);
            pad(&mut buf);
            blocks[k] = buf.len() / 64;
            padded.push(buf);
        }
        let expect: Vec<[u8; 32]> = items.iter().map(|(p, d)| crate::sm3_chain(p, d)).collect();
        assert_eq!(hash_lanes_generic(&padded, &blocks).to_vec(), expect);
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unsafe_code)]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present, checked just above.
                assert_eq!(unsafe { hash_lanes_avx2(&padded, &blocks) }.to_vec(), expect);
            }
            #[allow(unsafe_code)]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F is present, checked just above.
                assert_eq!(unsafe { hash_lanes_avx512(&padded, &blocks) }.to_vec(), expect);
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_sm3(items in proptest::collection::vec((any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..700)), 0..50)) {
            check(&items);
        }
    }
}
