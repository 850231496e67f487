//! 口令: argon2id hashing and the password policy.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

/// 口令策略: minimum length and character classes.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// How many of the four classes (lower case, upper case, digits, symbols) a password needs.
    pub min_classes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: 10, min_classes: 3 }
    }
}

impl PasswordPolicy {
    /// Checks a candidate password; the error says what is missing.
    pub fn check(&self, password: &str, username: &str) -> Result<(), String> {
        let len = password.chars().count();
        if len < self.min_length {
            return Err(format!("must be at least {} characters long", self.min_length));
        }
        if len > 256 {
            return Err("must be at most 256 characters long".into());
        }
        let classes = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_ascii_alphanumeric()),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if classes < self.min_classes {
            return Err(format!("must mix at least {} of: lower-case letters, upper-case letters, digits, symbols", self.min_classes));
        }
        if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
            return Err("must not contain the username".into());
        }
        Ok(())
    }
}

/// Hashes with argon2id and a random salt (PHC string form).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Hashing with default parameters and a fresh salt cannot fail for inputs under the length cap.
        .unwrap_or_default()
}

/// Verifies a password against a stored PHC hash; a malformed hash never verifies.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// A dummy verification to spend the same time when the user does not exist (no username oracle).
pub fn burn_verification(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing"));
    let _ = verify_password(password, h);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let p = PasswordPolicy::default();
        assert!(p.check("short", "u").is_err());
        assert!(p.check("alllowercaseletters", "u").is_err());
        assert!(p.check("Good-Passw0rd", "alice").is_ok());
        assert!(p.check("Alice-1234567", "alice").is_err());
    }

    #[test]
    fn hash_roundtrip() {
        let h = hash_password("Good-Passw0rd");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Good-Passw0rd", &h));
        assert!(!verify_password("Bad-Passw0rd", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
