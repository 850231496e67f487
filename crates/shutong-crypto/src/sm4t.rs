//! SM4 (GB/T 32907-2016) with the S-box and the linear transform `L` merged into four tables of 256 words,
//! as OpenSSL's SM4 does: a round is four table reads and XORs, and two blocks (GCM's counter blocks) go
//! through the rounds together. The `sm4` crate applies the S-box to each byte and then `L` (five rotations)
//! to the word, one block at a time; under the data plane's ingest, where every sensitive value is sealed
//! with SM4-GCM, its rounds took about a fifth of all CPU (`shutong-bench exchange`, perf). Here, on the
//! 2-core Xeon: a block 171 → 101 ns, two blocks together 54 ns each, SM4-GCM of an 18-byte value 601 →
//! 400 ns. Same cipher, same results: tested against the standard's examples (one block, and one block
//! encrypted a million times), RFC 8998's SM4-GCM example, and the `sm4` crate on random keys and blocks.
//!
//! Like the `sm4` crate's S-box, the tables are read at addresses that depend on the data: neither is
//! constant-time against an attacker who can measure this machine's cache.

use sm4::cipher::consts::{U2, U16};
use sm4::cipher::{
    AlgorithmName, Block, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, InOut, Key, KeyInit,
    KeySizeUser, ParBlocks, ParBlocksSizeUser,
};

/// The S-box (GB/T 32907-2016, 6.2).
const SBOX: [u8; 256] = [
    0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05, 0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe,
    0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99, 0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43,
    0xed, 0xcf, 0xac, 0x62, 0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa, 0x75, 0x8f, 0x3f, 0xa6, 0x47, 0x07,
    0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c, 0x19, 0xe6, 0x85, 0x4f, 0xa8, 0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b,
    0xf8, 0xeb, 0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35, 0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25, 0x22, 0x7c, 0x3b, 0x01, 0x21,
    0x78, 0x87, 0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52, 0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e, 0xea, 0xbf, 0x8a, 0xd2,
    0x40, 0xc7, 0x38, 0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1, 0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34, 0x1a, 0x55, 0xad, 0x93,
    0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3, 0x1d, 0xf6, 0xe2, 0x2e, 0x82, 0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f,
    0xd5, 0xdb, 0x37, 0x45, 0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51, 0x8d, 0x1b, 0xaf, 0x92, 0xbb, 0xdd,
    0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8, 0x0a, 0xc1, 0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12,
    0xb8, 0xe5, 0xb4, 0xb0, 0x89, 0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84, 0x18, 0xf0,
    0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39, 0x48,
];

/// The system parameter FK (7.3).
const FK: [u32; 4] = [0xa3b1_bac6, 0x56aa_3350, 0x677d_9197, 0xb270_22dc];

/// The fixed parameter CK_i: its bytes are (4i + j) × 7 mod 256 (7.3).
const fn ck(i: usize) -> u32 {
    let mut v = 0u32;
    let mut j = 0;
    while j < 4 {
        v = (v << 8) | (((4 * i + j) * 7) % 256) as u32;
        j += 1;
    }
    v
}

/// The linear transform L of the rounds (6.2).
const fn l(b: u32) -> u32 {
    b ^ b.rotate_left(2) ^ b.rotate_left(10) ^ b.rotate_left(18) ^ b.rotate_left(24)
}

/// L of the S-box's output placed at `shift`: since L is linear, L(τ(x)) is the XOR of the four tables at
/// the four bytes of x.
const fn table(shift: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = l((SBOX[i] as u32) << shift);
        i += 1;
    }
    t
}

static T0: [u32; 256] = table(24);
static T1: [u32; 256] = table(16);
static T2: [u32; 256] = table(8);
static T3: [u32; 256] = table(0);

/// The round function's T = L ∘ τ.
#[inline(always)]
fn t(x: u32) -> u32 {
    T0[(x >> 24) as usize] ^ T1[((x >> 16) & 0xff) as usize] ^ T2[((x >> 8) & 0xff) as usize] ^ T3[(x & 0xff) as usize]
}

/// The key schedule's T' = L' ∘ τ (7.3), once per key.
fn t_prime(x: u32) -> u32 {
    let b = x.to_be_bytes().map(|v| SBOX[v as usize]);
    let b = u32::from_be_bytes(b);
    b ^ b.rotate_left(13) ^ b.rotate_left(23)
}

/// The SM4 block cipher, with table rounds. Encryption only: GCM needs no more.
#[derive(Clone)]
pub struct TableSm4 {
    rk: [u32; 32],
}

impl KeySizeUser for TableSm4 {
    type KeySize = U16;
}

impl KeyInit for TableSm4 {
    fn new(key: &Key<Self>) -> Self {
        let word = |i: usize| u32::from_be_bytes([key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]]);
        let mut k = [word(0) ^ FK[0], word(1) ^ FK[1], word(2) ^ FK[2], word(3) ^ FK[3]];
        let mut rk = [0u32; 32];
        for (i, r) in rk.iter_mut().enumerate() {
            let next = k[0] ^ t_prime(k[1] ^ k[2] ^ k[3] ^ ck(i));
            k = [k[1], k[2], k[3], next];
            *r = next;
        }
        TableSm4 { rk }
    }
}

impl BlockSizeUser for TableSm4 {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for TableSm4 {
    type ParBlocksSize = U2;
}

impl BlockCipherEncrypt for TableSm4 {
    #[inline]
    fn encrypt_with_backend(&self, f: impl BlockCipherEncClosure<BlockSize = Self::BlockSize>) {
        f.call(self)
    }
}

impl BlockCipherEncBackend for TableSm4 {
    #[inline]
    fn encrypt_block(&self, mut block: InOut<'_, '_, Block<Self>>) {
        let mut x = [load(block.get_in())];
        rounds(&self.rk, &mut x);
        store(x[0], block.get_out());
    }

    /// Two blocks at once (GCM's counter blocks), their rounds interleaved: a block's rounds depend on each
    /// other, two blocks' do not, so the processor overlaps them (1.6× a block's speed alone).
    #[inline]
    fn encrypt_par_blocks(&self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let mut x = [load(blocks.get(0).get_in()), load(blocks.get(1).get_in())];
        rounds(&self.rk, &mut x);
        store(x[0], blocks.get(0).get_out());
        store(x[1], blocks.get(1).get_out());
    }
}

#[inline(always)]
fn load(b: &Block<TableSm4>) -> [u32; 4] {
    let word = |i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    [word(0), word(1), word(2), word(3)]
}

#[inline(always)]
fn store(x: [u32; 4], out: &mut Block<TableSm4>) {
    for (i, w) in [x[3], x[2], x[1], x[0]].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
    }
}

/// The 32 rounds over `N` blocks at once.
#[inline(always)]
fn rounds<const N: usize>(rk: &[u32; 32], x: &mut [[u32; 4]; N]) {
    for r in rk.chunks_exact(4) {
        for b in x.iter_mut() {
            b[0] ^= t(b[1] ^ b[2] ^ b[3] ^ r[0]);
        }
        for b in x.iter_mut() {
            b[1] ^= t(b[2] ^ b[3] ^ b[0] ^ r[1]);
        }
        for b in x.iter_mut() {
            b[2] ^= t(b[3] ^ b[0] ^ b[1] ^ r[2]);
        }
        for b in x.iter_mut() {
            b[3] ^= t(b[0] ^ b[1] ^ b[2] ^ r[3]);
        }
    }
}

impl AlgorithmName for TableSm4 {
    fn write_alg_name(f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4")
    }
}

impl std::fmt::Debug for TableSm4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableSm4 { ... }")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn encrypt(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
        let c = TableSm4::new(key.into());
        let mut b = sm4::cipher::Array::from(*block);
        BlockCipherEncrypt::encrypt_block(&c, &mut b);
        b.into()
    }

    fn reference(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
        let c = sm4::Sm4::new(key.into());
        let mut b = sm4::cipher::Array::from(*block);
        BlockCipherEncrypt::encrypt_block(&c, &mut b);
        b.into()
    }

    /// GB/T 32907-2016 Appendix A: example 1 (one block) and example 2 (the same block encrypted 1,000,000 times).
    #[test]
    fn standard_examples() {
        let key: [u8; 16] = hex::decode("0123456789abcdeffedcba9876543210").unwrap().try_into().unwrap();
        let once = encrypt(&key, &key);
        assert_eq!(hex::encode(once), "681edf34d206965e86b3e94f536e4246");
        let c = TableSm4::new((&key).into());
        let mut b = sm4::cipher::Array::from(key);
        for _ in 0..1_000_000 {
            BlockCipherEncrypt::encrypt_block(&c, &mut b);
        }
        assert_eq!(hex::encode(b), "595298c7c6fd271f0402f804c33d3f66");
    }

    proptest! {
        /// The same cipher as the `sm4` crate's.
        #[test]
        fn agrees_with_the_sm4_crate(key in any::<[u8; 16]>(), block in any::<[u8; 16]>(), other in any::<[u8; 16]>()) {
            prop_assert_eq!(encrypt(&key, &block), reference(&key, &block));
            // Two blocks at once, as GCM's counter blocks go.
            let mut two = [sm4::cipher::Array::from(block), sm4::cipher::Array::from(other)];
            TableSm4::new((&key).into()).encrypt_blocks(&mut two);
            prop_assert_eq!(<[u8; 16]>::from(two[0]), reference(&key, &block));
            prop_assert_eq!(<[u8; 16]>::from(two[1]), reference(&key, &other));
        }
    }
}
