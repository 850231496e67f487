//! 授权: the authenticated principal and the authorisation policy of organisation and identity.

use serde::Serialize;
use shutong_audit::AuditContext;

use crate::model::{DepartmentId, Role, RoleAssignmentId, UserId};

/// One role a user holds in one department.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: RoleAssignmentId,
    pub role: Role,
    pub department_id: DepartmentId,
}

/// 主体: who is acting. A user (person or system account) authenticated by session or token, or the
/// operator of the machine acting through the CLI, who holds the platform administrator's rights.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    pub user_id: Option<UserId>,
    pub username: String,
    pub display_name: String,
    pub department_id: Option<DepartmentId>,
    pub roles: Vec<RoleAssignment>,
    pub is_system: bool,
    /// The CLI operator on the platform's own machine.
    pub operator: bool,
}

impl Principal {
    /// The operator of the machine, acting through the CLI (`cli:<os-user>` in the audit trail).
    pub fn operator(label: &str) -> Self {
        Principal {
            user_id: None,
            username: label.to_string(),
            display_name: label.to_string(),
            department_id: None,
            roles: Vec::new(),
            is_system: false,
            operator: true,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r.role == role)
    }

    pub fn has_role_in(&self, role: Role, department: DepartmentId) -> bool {
        self.roles.iter().any(|r| r.role == role && r.department_id == department)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.operator || self.has_role(Role::PlatformAdmin)
    }

    /// Auditors read everything and change nothing.
    pub fn is_auditor(&self) -> bool {
        self.has_role(Role::Auditor)
    }

    /// May read the users of `department`.
    pub fn can_read_users_of(&self, department: DepartmentId) -> bool {
        self.is_platform_admin() || self.is_auditor() || self.has_role_in(Role::DepartmentAdmin, department)
    }

    /// May read the users of some department (the portal offers its user list then).
    pub fn can_read_some_users(&self) -> bool {
        self.is_platform_admin() || self.is_auditor() || self.has_role(Role::DepartmentAdmin)
    }

    /// May create, change and disable the users of `department`.
    pub fn can_manage_users_of(&self, department: DepartmentId) -> bool {
        self.is_platform_admin() || self.has_role_in(Role::DepartmentAdmin, department)
    }

    /// May issue and revoke a user's tokens: the user itself (auditors excepted: they change nothing), or
    /// an administrator of its department.
    pub fn may_manage_credentials_of(&self, user: UserId, department: DepartmentId) -> bool {
        let is_self = self.user_id == Some(user);
        (is_self && !self.is_auditor()) || self.can_manage_users_of(department)
    }

    /// May change a user's profile: an administrator of its department, or the user itself for its own
    /// display name (not its status; auditors excepted).
    pub fn may_update_user(&self, user: UserId, department: DepartmentId, changes_status: bool) -> bool {
        let is_self = self.user_id == Some(user);
        self.can_manage_users_of(department) || (is_self && !changes_status && !self.is_auditor())
    }

    /// May create and change departments.
    pub fn can_manage_departments(&self) -> bool {
        self.is_platform_admin()
    }

    /// May read the whole audit trail.
    pub fn can_read_audit(&self) -> bool {
        self.is_platform_admin() || self.is_auditor()
    }

    /// Departments whose users this principal administers (empty for platform admins, who see all).
    pub fn administered_departments(&self) -> Vec<DepartmentId> {
        self.roles.iter().filter(|r| r.role == Role::DepartmentAdmin).map(|r| r.department_id).collect()
    }

    /// The audit context of this principal for one request.
    pub fn audit_context(&self, request_id: Option<String>, ip: Option<String>) -> AuditContext {
        AuditContext { actor_user_id: self.user_id.map(|u| u.0), actor: self.username.clone(), request_id, ip }
    }
}

impl shutong_audit::AuditReader for Principal {
    fn reads_whole_trail(&self) -> bool {
        self.can_read_audit()
    }

    fn own_department(&self) -> Option<i64> {
        self.department_id.map(|d| d.0)
    }
}
