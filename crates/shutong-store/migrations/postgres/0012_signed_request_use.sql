-- A system account's last SM2-signed request accepted by the platform (its platform use when it never logs in
-- and holds no token; read by the zombie verdict's idle criterion, 所占用资源长期处于空闲状态).
ALTER TABLE users ADD COLUMN last_signed_at BIGINT;
