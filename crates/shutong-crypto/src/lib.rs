#![doc = include_str!("../README.md")]

use std::path::Path;

mod datakeys;
pub mod request_signing;
mod sm3x;
mod sm4t;
pub use datakeys::DataKeys;
pub use sm3x::sm3_chain_many;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use sm2::dsa::signature::{Signer, Verifier};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sm3::Digest;

/// The SM2 distinguishing identifier used when none is agreed (GB/T 35276 §7, GM/T 0009 §10):
/// `1234567812345678`. OpenSSL: `-pkeyopt distid:1234567812345678`.
pub const DEFAULT_SM2_ID: &str = "1234567812345678";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("public key: {0}")]
    PublicKey(String),
    #[error("signature: {0}")]
    Signature(String),
    #[error("SM4-GCM: the ciphertext or its tag is not authentic, or the key is wrong")]
    Unauthentic,
    #[error("SM4-GCM: {0}")]
    Sealing(String),
}

pub type CryptoResult<T> = Result<T, CryptoError>;

/// SM3 (GB/T 32905-2016) of one byte string.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    sm3::Sm3::digest(data).into()
}

/// Incremental SM3 (a streamed body).
#[derive(Clone, Default)]
pub struct Sm3Hasher(sm3::Sm3);

impl Sm3Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// One link of a hash chain: `SM3(prev || data)`.
pub fn sm3_chain(prev: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut h = sm3::Sm3::new();
    h.update(prev);
    h.update(data);
    h.finalize().into()
}

/// 节点密钥: this node's SM2 key pair (GB/T 32918), its identity to auditors and to other nodes
/// (办法 第二十一条: 身份认证). Signs with the default distinguishing identifier.
pub struct NodeKey {
    signing: sm2::dsa::SigningKey,
    secret: sm2::SecretKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("public_key", &self.public_key_hex()).finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A new random key pair.
    pub fn generate() -> Self {
        Self::from_secret(sm2::SecretKey::generate())
    }

    fn from_secret(secret: sm2::SecretKey) -> Self {
        // Only an over-long distinguishing identifier makes this fail; the default one is 16 bytes.
        #[allow(clippy::expect_used)]
        let signing = sm2::dsa::SigningKey::new(DEFAULT_SM2_ID, &secret).expect("the default SM2 ID is valid");
        NodeKey { signing, secret }
    }

    /// Reads the key from a PKCS#8 PEM file (owner-only permissions); a missing file is an error.
    pub fn load(path: &Path) -> CryptoResult<Self> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        let pem = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        check_owner_only(path).map_err(err)?;
        let secret = sm2::SecretKey::from_pkcs8_pem(&pem).map_err(|e| err(format!("not an SM2 PKCS#8 key: {e}")))?;
        Ok(Self::from_secret(secret))
    }

    /// Reads the key from a PKCS#8 PEM file, or creates one there (owner-only permissions) if there is
    /// none. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> CryptoResult<(Self, bool)> {
        let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                check_owner_only(path).map_err(err)?;
                let secret = sm2::SecretKey::from_pkcs8_pem(&pem).map_err(|e| err(format!("not an SM2 PKCS#8 key: {e}")))?;
                Ok((Self::from_secret(secret), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                }
                let pem = key.secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(e.to_string()))?;
                write_owner_only(path, pem.as_bytes()).map_err(|e| err(e.to_string()))?;
                Ok((key, true))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The public key as SubjectPublicKeyInfo PEM (what `openssl pkeyutl -pubin -inkey` reads).
    pub fn public_key_pem(&self) -> String {
        // Encoding a valid point cannot fail.
        self.signing.verifying_key().to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The public key as an uncompressed SEC1 point (`04 || x || y`), hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().to_sec1_bytes())
    }

    /// SM2 signature of `msg` (with Z computed from the default ID), DER-encoded as OpenSSL writes it.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: sm2::dsa::Signature = self.signing.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }
}

/// An SM2 public key that verifies signatures made with the default distinguishing identifier.
pub struct PublicKey(sm2::dsa::VerifyingKey);

impl PublicKey {
    /// From SubjectPublicKeyInfo PEM.
    pub fn from_pem(pem: &str) -> CryptoResult<Self> {
        let pk = sm2::PublicKey::from_public_key_pem(pem).map_err(|e| CryptoError::PublicKey(e.to_string()))?;
        sm2::dsa::VerifyingKey::new(DEFAULT_SM2_ID, pk).map(PublicKey).map_err(|e| CryptoError::PublicKey(e.to_string()))
    }

    /// From an uncompressed or compressed SEC1 point, hex.
    pub fn from_hex(h: &str) -> CryptoResult<Self> {
        let bytes = hex::decode(h.trim()).map_err(|e| CryptoError::PublicKey(format!("not hex: {e}")))?;
        sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_SM2_ID, &bytes).map(PublicKey).map_err(|e| CryptoError::PublicKey(e.to_string()))
    }

    /// Checks a DER-encoded SM2 signature of `msg`.
    pub fn verify(&self, msg: &[u8], der_signature: &[u8]) -> CryptoResult<()> {
        let sig =
            sm2::dsa::Signature::from_der(der_signature).map_err(|e| CryptoError::Signature(format!("not a DER SM2 signature: {e}")))?;
        self.0.verify(msg, &sig).map_err(|_| CryptoError::Signature("does not verify".into()))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_sec1_bytes())
    }
}

type Sm4GcmCipher = aes_gcm::AesGcm<sm4t::TableSm4, aes_gcm::aead::consts::U12>;

/// SM4 (GB/T 32907-2016) in GCM mode (RFC 8998): authenticated encryption with a 128-bit key,
/// 96-bit nonce and 128-bit tag.
pub struct Sm4Gcm(Sm4GcmCipher);

impl Sm4Gcm {
    pub fn new(key: &[u8; 16]) -> Self {
        Sm4Gcm(Sm4GcmCipher::new(key.into()))
    }

    /// Encrypts with the given nonce; returns ciphertext followed by the 16-byte tag.
    pub fn encrypt(&self, nonce: &[u8; 12], plaintext: &[u8], aad: &[u8]) -> CryptoResult<Vec<u8>> {
        self.0.encrypt(nonce.into(), Payload { msg: plaintext, aad }).map_err(|e| CryptoError::Sealing(e.to_string()))
    }

    /// Decrypts ciphertext followed by its tag.
    pub fn decrypt(&self, nonce: &[u8; 12], ciphertext_and_tag: &[u8], aad: &[u8]) -> CryptoResult<Vec<u8>> {
        self.0.decrypt(nonce.into(), Payload { msg: ciphertext_and_tag, aad }).map_err(|_| CryptoError::Unauthentic)
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A private key readable by others is refused: copying it would let anyone sign as this node.
#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!("readable by group or others (mode {:o}); chmod 600 it", mode & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// GB/T 32905-2016 Appendix A, examples 1 and 2.
    #[test]
    fn sm3_standard_vectors() {
        assert_eq!(hex::encode(sm3(b"abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(hex::encode(sm3("abcd".repeat(16).as_bytes())), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
        let mut joined = [0u8; 32].to_vec();
        joined.extend_from_slice(b"abc");
        assert_eq!(sm3_chain(&[0u8; 32], b"abc"), sm3(&joined));
    }

    /// GB/T 32907-2016 Appendix A, example 1: one block.
    #[test]
    fn sm4_standard_vector() {
        use sm4::cipher::{BlockCipherEncrypt, KeyInit};
        let key = unhex("0123456789abcdeffedcba9876543210");
        let cipher = sm4::Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::Array::try_from(key.as_slice()).unwrap();
        cipher.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
    }

    /// RFC 8998 Appendix A.1: SM4-GCM.
    #[test]
    fn sm4_gcm_rfc8998_vector() {
        let key: [u8; 16] = unhex("0123456789ABCDEFFEDCBA9876543210").try_into().unwrap();
        let nonce: [u8; 12] = unhex("00001234567800000000ABCD").try_into().unwrap();
        let aad = unhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let plain = unhex(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD
             EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let expect_ct = unhex(
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735
             D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
        );
        let expect_tag = unhex("83DE3541E4C2B58177E065A9BF7B62EC");
        let gcm = Sm4Gcm::new(&key);
        let sealed = gcm.encrypt(&nonce, &plain, &aad).unwrap();
        assert_eq!(hex::encode_upper(&sealed[..plain.len()]), hex::encode_upper(&expect_ct));
        assert_eq!(hex::encode_upper(&sealed[plain.len()..]), hex::encode_upper(&expect_tag));
        assert_eq!(gcm.decrypt(&nonce, &sealed, &aad).unwrap(), plain);
        let mut bad = sealed.clone();
        bad[3] ^= 1;
        assert!(matches!(gcm.decrypt(&nonce, &bad, &aad), Err(CryptoError::Unauthentic)));
        assert!(gcm.decrypt(&nonce, &sealed, b"other aad").is_err());
    }

    #[test]
    fn sign_and_verify_round_trip_through_pem_and_hex() {
        let key = NodeKey::generate();
        let sig = key.sign(b"checkpoint");
        let by_pem = PublicKey::from_pem(&key.public_key_pem()).unwrap();
        let by_hex = PublicKey::from_hex(&key.public_key_hex()).unwrap();
        by_pem.verify(b"checkpoint", &sig).unwrap();
        by_hex.verify(b"checkpoint", &sig).unwrap();
        assert!(by_pem.verify(b"checkpoinT", &sig).is_err());
        assert!(by_pem.verify(b"checkpoint", b"\x30\x02garbage").is_err());
        assert!(PublicKey::from_hex("04zz").is_err());
    }

    /// OpenSSL 3 verifies our signatures and SM3 digests (skipped where `openssl` is absent).
    #[test]
    fn openssl_verifies_signature_and_digest() {
        let Ok(out) = std::process::Command::new("openssl").arg("version").output() else {
            eprintln!("openssl not found: interoperability not checked");
            return;
        };
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("OpenSSL 3"), "need OpenSSL 3");
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::generate();
        let msg = b"shutong checkpoint \x00\x01\x02";
        std::fs::write(dir.path().join("pub.pem"), key.public_key_pem()).unwrap();
        std::fs::write(dir.path().join("msg"), msg).unwrap();
        std::fs::write(dir.path().join("sig"), key.sign(msg)).unwrap();
        let verify = |file: &str| {
            std::process::Command::new("openssl")
                .current_dir(dir.path())
                .args(["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", file, "-sigfile", "sig"])
                .args(["-digest", "sm3", "-pkeyopt", &format!("distid:{DEFAULT_SM2_ID}")])
                .output()
                .unwrap()
        };
        let ok = verify("msg");
        assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
        std::fs::write(dir.path().join("other"), b"shutong checkpoint \x00\x01\x03").unwrap();
        assert!(!verify("other").status.success());
        let dgst = std::process::Command::new("openssl").current_dir(dir.path()).args(["dgst", "-sm3", "-r", "msg"]).output().unwrap();
        assert!(String::from_utf8_lossy(&dgst.stdout).starts_with(&hex::encode(sm3(msg))));
    }

    #[test]
    fn key_file_is_created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("node-sm2.pem");
        let (a, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.public_key_hex(), b.public_key_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = NodeKey::load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
