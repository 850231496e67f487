//! Conversions from domain types to wire types.

use shutong_api_types::*;
use shutong_identity::{ApiToken, Department, RoleAssignment, User};
use shutong_reference::{RegionEntry, RegionTable};
use shutong_store::from_ms;

pub fn department_view(d: &Department, regions: &RegionTable) -> DepartmentView {
    DepartmentView {
        id: d.id.0,
        name: d.name.clone(),
        credit_code: d.credit_code.clone(),
        region_code: d.region_code.clone(),
        region_name: regions.lookup(&d.region_code).ok().map(|(_, e)| e.name.clone()),
        level: d.level.as_str().into(),
        kind: d.kind.as_str().into(),
        parent_id: d.parent_id.map(|p| p.0),
        created_at: from_ms(d.created_at_ms),
        updated_at: from_ms(d.updated_at_ms),
    }
}

pub fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id.0,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        department_id: u.department_id.0,
        is_system: u.is_system,
        status: u.status.as_str().into(),
        locked_until: u.locked_until_ms.filter(|t| *t > shutong_store::now_ms()).map(from_ms),
        must_change_password: u.must_change_password,
        last_login_at: u.last_login_at_ms.map(from_ms),
        last_signed_at: u.last_signed_at_ms.map(from_ms),
        created_at: from_ms(u.created_at_ms),
    }
}

pub fn role_view(r: &RoleAssignment) -> RoleView {
    RoleView { id: r.id.0, role: r.role.as_str().into(), role_zh: r.role.label_zh().into(), department_id: r.department_id.0 }
}

pub fn token_view(t: &ApiToken) -> TokenView {
    TokenView {
        id: t.id.0,
        user_id: t.user_id.0,
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: from_ms(t.created_at_ms),
        expires_at: from_ms(t.expires_at_ms),
        revoked_at: t.revoked_at_ms.map(from_ms),
        last_used_at: t.last_used_at_ms.map(from_ms),
    }
}

pub fn audit_view(e: &shutong_audit::AuditEvent) -> AuditEventView {
    AuditEventView {
        seq: e.seq,
        at: from_ms(e.at_ms),
        actor_user_id: e.actor_user_id,
        actor: e.actor.clone(),
        department_id: e.department_id,
        action: e.action.clone(),
        target_kind: e.target_kind.clone(),
        target_id: e.target_id.clone(),
        detail: e.detail.clone(),
        request_id: e.request_id.clone(),
        ip: e.ip.clone(),
        chain_seq: e.chain_seq,
        chain_hash: e.chain_hash.clone(),
    }
}

pub fn region_view(e: &RegionEntry) -> RegionView {
    RegionView {
        code: e.code.clone(),
        name: e.name.clone(),
        level: e.level.as_str().into(),
        parent: e.parent.clone(),
        valid_from: e.valid_from,
        valid_to: e.valid_to,
        current: e.is_current(),
        former_names: e.former_names.clone(),
    }
}
