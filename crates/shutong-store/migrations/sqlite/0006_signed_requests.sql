-- SM2-signed requests of system accounts (an alternative to bearer tokens): the account's public key, and
-- the nonces seen within the accepted clock skew (a replayed request is refused).
ALTER TABLE users ADD COLUMN sm2_public_key TEXT;
CREATE TABLE request_nonces (
    user_id BIGINT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces(expires_at);
