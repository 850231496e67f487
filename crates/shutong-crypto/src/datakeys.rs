//! The data keys (数据加密密钥): SM4-GCM keys that encrypt sensitive items at rest, and the HMAC-SM3 key of
//! the blind index that lets an encrypted key column still be looked up.
//!
//! A key ring holds numbered keys; the *active* one encrypts, every one decrypts, so that a key can be
//! rotated without rewriting the data at once. The key file is text, owner-only (mode 0600):
//!
//! ```text
//! # shutong data keys
//! index 6b1f…(32 hex digits)
//! key 1 0f3c…(32 hex digits)
//! key 2 9a07…(32 hex digits) active
//! ```
//!
//! The index key is never rotated: changing it would change every stored key hash.

use std::collections::BTreeMap;
use std::path::Path;

use hmac::{KeyInit as _, Mac};
use rand::RngCore;

use crate::{CryptoError, CryptoResult, Sm4Gcm, check_owner_only};

const NONCE: usize = 12;

/// A ring of SM4-GCM data keys and the blind-index key. `Debug` shows only the key numbers.
pub struct DataKeys {
    active: u32,
    keys: BTreeMap<u32, ([u8; 16], Sm4Gcm)>,
    index: [u8; 16],
    /// HMAC-SM3 keyed with `index` (its padded key blocks absorbed once), cloned per use.
    index_mac: hmac::Hmac<sm3::Sm3>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn index_mac(index: &[u8; 16]) -> hmac::Hmac<sm3::Sm3> {
    // HMAC accepts keys of any length.
    #[allow(clippy::expect_used)]
    hmac::Hmac::<sm3::Sm3>::new_from_slice(index).expect("HMAC takes any key length")
}

fn random16() -> [u8; 16] {
    let mut k = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

fn key16(hex_digits: &str, what: &str) -> Result<[u8; 16], String> {
    let bytes = hex::decode(hex_digits.trim()).map_err(|_| format!("{what}: not hexadecimal"))?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| format!("{what}: {} bytes, an SM4 key is 16 (32 hex digits)", bytes.len()))
}

impl DataKeys {
    /// A new ring with one random key (number 1) and a random index key.
    pub fn generate() -> Self {
        let mut keys = BTreeMap::new();
        let k = random16();
        keys.insert(1, (k, Sm4Gcm::new(&k)));
        let index = random16();
        DataKeys { active: 1, keys, index_mac: index_mac(&index), index }
    }

    /// Keys given in configuration: `"ID:HEX"` each, the last one active, and the index key in hex.
    pub fn from_config(keys: &[String], index_hex: &str) -> Result<Self, String> {
        let index = key16(index_hex, "security.index_key")?;
        let mut ring = BTreeMap::new();
        let mut active = None;
        for (i, entry) in keys.iter().enumerate() {
            let what = format!("security.data_keys[{i}]");
            let (id, hexd) = entry.split_once(':').ok_or_else(|| format!("{what}: expected ID:HEX"))?;
            let id: u32 = id.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("{what}: the ID must be a positive number"))?;
            let k = key16(hexd, &what)?;
            if ring.insert(id, (k, Sm4Gcm::new(&k))).is_some() {
                return Err(format!("{what}: key {id} is given twice"));
            }
            active = Some(id);
        }
        let active = active.ok_or("security.data_keys: no key")?;
        Ok(DataKeys { active, keys: ring, index_mac: index_mac(&index), index })
    }

    /// Parses the key file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut index = None;
        let mut keys = BTreeMap::new();
        let mut active = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = format!("line {}", n + 1);
            match words.as_slice() {
                ["index", h] => index = Some(key16(h, &at)?),
                ["key", id, h, rest @ ..] => {
                    let id: u32 = id.parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("{at}: the key number must be positive"))?;
                    let k = key16(h, &at)?;
                    if keys.insert(id, (k, Sm4Gcm::new(&k))).is_some() {
                        return Err(format!("{at}: key {id} appears twice"));
                    }
                    match rest {
                        [] => {}
                        ["active"] if active.is_none() => active = Some(id),
                        ["active"] => return Err(format!("{at}: a second active key")),
                        _ => return Err(format!("{at}: expected `key ID HEX [active]`")),
                    }
                }
                _ => return Err(format!("{at}: expected `index HEX` or `key ID HEX [active]`")),
            }
        }
        let index = index.ok_or("no `index` line")?;
        let active = active.or_else(|| keys.keys().next_back().copied()).ok_or("no key")?;
        Ok(DataKeys { active, keys, index_mac: index_mac(&index), index })
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        let mut s = String::from(
            "# shutong data keys (SM4-GCM, GB/T 32907; blind index HMAC-SM3). Secret: owner-only, backed up apart from the database.\n",
        );
        s.push_str(&format!("index {}\n", hex::encode(self.index)));
        for (id, (k, _)) in &self.keys {
            s.push_str(&format!("key {id} {}{}\n", hex::encode(k), if *id == self.active { " active" } else { "" }));
        }
        s
    }

    /// Reads an existing key file (owner-only, as [`Self::load_or_create`] checks).
    pub fn load(path: &Path) -> CryptoResult<Self> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        check_owner_only(path).map_err(err)?;
        Self::parse(&text).map_err(err)
    }

    /// Whether two rings share the blind-index key (a ring that does not cannot replace the other: every
    /// stored blind index would stop matching).
    pub fn same_index_key(&self, other: &DataKeys) -> bool {
        self.index == other.index
    }

    /// Reads the key file, or creates one (owner-only) if there is none. Returns the ring and whether it was created.
    pub fn load_or_create(path: &Path) -> CryptoResult<(Self, bool)> {
        match std::fs::metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self::generate();
                ring.save(path)?;
                Ok((ring, true))
            }
            Err(e) => Err(CryptoError::KeyFile { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    /// Writes the key file atomically (a new owner-only file renamed over the old one).
    pub fn save(&self, path: &Path) -> CryptoResult<()> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        crate::write_owner_only(&tmp, self.to_text().as_bytes()).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Adds a new random key and makes it the active one; returns its number.
    pub fn rotate(&mut self) -> u32 {
        let id = self.keys.keys().next_back().copied().unwrap_or(0) + 1;
        let k = random16();
        self.keys.insert(id, (k, Sm4Gcm::new(&k)));
        self.active = id;
        id
    }

    /// Removes a key that no longer encrypts anything (the caller checks that). The active key stays.
    pub fn retire(&mut self, id: u32) -> Result<(), String> {
        if id == self.active {
            return Err(format!("key {id} is the active key: rotate first"));
        }
        self.keys.remove(&id).map(|_| ()).ok_or_else(|| format!("there is no key {id}"))
    }

    pub fn active(&self) -> u32 {
        self.active
    }

    pub fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Encrypts under the active key with a random 96-bit nonce: returns the key number and
    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> CryptoResult<(u32, Vec<u8>)> {
        let (_, cipher) = self.keys.get(&self.active).ok_or_else(|| CryptoError::Sealing("no active key".into()))?;
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher.encrypt(&nonce, plaintext, aad)?;
        let mut out = Vec::with_capacity(NONCE + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok((self.active, out))
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag` sealed under key `id`.
    pub fn open(&self, id: u32, sealed: &[u8], aad: &[u8]) -> CryptoResult<Vec<u8>> {
        let (_, cipher) = self.keys.get(&id).ok_or_else(|| CryptoError::Sealing(format!("key {id} is not in the key ring")))?;
        if sealed.len() < NONCE + 16 {
            return Err(CryptoError::Unauthentic);
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let nonce: &[u8; NONCE] = nonce.try_into().map_err(|_| CryptoError::Unauthentic)?;
        cipher.decrypt(nonce, ct, aad)
    }

    /// The blind index of a value: HMAC-SM3 under the index key (RFC 2104 with SM3).
    pub fn blind_index(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = self.index_mac.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_retire() {
        let mut ring = DataKeys::generate();
        let (id, sealed) = ring.seal("110101199003071235".as_bytes(), b"aad").unwrap();
        assert_eq!(id, 1);
        assert_eq!(ring.open(1, &sealed, b"aad").unwrap(), b"110101199003071235");
        // Another context, a flipped byte, a cut tag: refused.
        assert!(ring.open(1, &sealed, b"other").is_err());
        let mut bad = sealed.clone();
        bad[14] ^= 1;
        assert!(ring.open(1, &bad, b"aad").is_err());
        assert!(ring.open(1, &sealed[..20], b"aad").is_err());
        // Two seals of one value differ (random nonces).
        assert_ne!(ring.seal(b"x", b"").unwrap().1, ring.seal(b"x", b"").unwrap().1);
        // Rotation: the new key encrypts, the old one still decrypts; the index does not change.
        let before = ring.blind_index(b"k");
        assert_eq!(ring.rotate(), 2);
        assert_eq!(ring.seal(b"x", b"").unwrap().0, 2);
        assert_eq!(ring.open(1, &sealed, b"aad").unwrap(), b"110101199003071235");
        assert_eq!(ring.blind_index(b"k"), before);
        assert!(ring.retire(2).is_err(), "the active key");
        ring.retire(1).unwrap();
        assert!(ring.open(1, &sealed, b"aad").is_err());
        // The file's text round-trips.
        let again = DataKeys::parse(&ring.to_text()).unwrap();
        assert_eq!((again.active(), again.ids()), (2, vec![2]));
        assert_eq!(again.blind_index(b"k"), before);
    }

    /// RFC 2202-style check of HMAC-SM3 against an independent computation: HMAC(K, m) =
    /// SM3((K ⊕ opad) ‖ SM3((K ⊕ ipad) ‖ m)) with K zero-padded to 64 bytes.
    #[test]
    fn blind_index_is_hmac_sm3() {
        let ring = DataKeys::parse("index 000102030405060708090a0b0c0d0e0f\nkey 1 00000000000000000000000000000000\n").unwrap();
        let mut k = [0u8; 64];
        k[..16].copy_from_slice(&hex::decode("000102030405060708090a0b0c0d0e0f").unwrap());
        let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(b"abc".iter().copied()).collect();
        let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(crate::sm3(&inner)).collect();
        assert_eq!(ring.blind_index(b"abc"), crate::sm3(&outer));
    }

    #[test]
    fn bad_key_files_are_named() {
        assert!(DataKeys::parse("key 1 00").unwrap_err().contains("line 1"));
        assert!(DataKeys::parse("key 1 00000000000000000000000000000000\n").unwrap_err().contains("index"));
        assert!(DataKeys::parse("index zz\n").unwrap_err().contains("hexadecimal"));
        assert!(DataKeys::from_config(&["0:00000000000000000000000000000000".into()], "00000000000000000000000000000000").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (ring, created) = DataKeys::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = DataKeys::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.blind_index(b"v"), ring.blind_index(b"v"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(DataKeys::load_or_create(&path).unwrap_err().to_string().contains("chmod 600"));
        }
    }
}
