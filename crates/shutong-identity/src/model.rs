//! Domain types of organisation and identity.

use serde::{Deserialize, Serialize};
use std::fmt;

use shutong_store::typed_id;

typed_id!(
    /// 部门标识: the platform's ID of a department.
    DepartmentId
);
typed_id!(
    /// 用户标识: the platform's ID of a user or system account.
    UserId
);
typed_id!(
    /// 令牌标识: the ID of an API token (not its secret).
    TokenId
);
typed_id!(
    /// 角色分配标识: the ID of one role assignment.
    RoleAssignmentId
);

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal / $zh:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// The Chinese name shown in the portal.
            pub fn label_zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$variant),)+ _ => None } }
            /// The accepted values, for error messages.
            pub fn expected() -> String { [$($s),+].join(", ") }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// 层级: the administrative level of a department or a platform node (国家、省、市三级; 县 below).
    DepartmentLevel {
        National => "national" / "国家级",
        Province => "province" / "省级",
        City => "city" / "市级",
        County => "county" / "县级",
    }
);

string_enum!(
    /// 部门类别: what a department is to the sharing programme (办法 第三条, 第五条).
    DepartmentKind {
        /// 政务部门: an ordinary government department, provider and consumer of data.
        Government => "government" / "政务部门",
        /// 共享主管部门: the sharing authority of its level (领导小组办公室).
        SharingAuthority => "sharing_authority" / "共享主管部门",
        /// 审计机关: an audit office, read-only over inventories and trails.
        AuditOffice => "audit_office" / "审计机关",
        /// 授权事业单位: an institution authorised to perform public administration.
        AuthorisedInstitution => "authorised_institution" / "授权事业单位",
        /// 发展改革部门: approves informatisation projects and accepts them (办法 第二十二条); its reviewers
        /// work the approval and acceptance queues.
        DevelopmentReform => "development_reform" / "发展改革部门",
        /// 财政部门: funds operation and maintenance (办法 第二十二条); its reviewers work the O&M funding queue.
        Finance => "finance" / "财政部门",
    }
);

string_enum!(
    /// 网络区域: 电子政务外网 (outer, non-classified) or 电子政务内网 (inner, classified) (SPEC §2).
    Zone {
        Outer => "outer" / "电子政务外网",
        Inner => "inner" / "电子政务内网",
    }
);

string_enum!(
    /// 角色: what a user may do, always scoped to one department (SPEC C1).
    Role {
        /// 平台管理员: runs the platform at this node.
        PlatformAdmin => "platform_admin" / "平台管理员",
        /// 部门管理员: manages the users and system accounts of one department.
        DepartmentAdmin => "department_admin" / "部门管理员",
        /// 目录编制人员: compiles the department's catalog (办法 第九条 谁编制谁负责).
        CatalogEditor => "catalog_editor" / "目录编制人员",
        /// 审核人员: answers sharing requests and reviews on behalf of the department.
        Reviewer => "reviewer" / "审核人员",
        /// 审计人员: reads everything, changes nothing.
        Auditor => "auditor" / "审计人员",
        /// 系统账户: a department's business system or exchange node calling the API.
        SystemAccount => "system_account" / "系统账户",
    }
);

string_enum!(
    /// 账户状态.
    UserStatus {
        Active => "active" / "正常",
        Disabled => "disabled" / "停用",
    }
);

/// 政务部门: a government department or authorised institution, with its 统一社会信用代码 and region.
#[derive(Clone, Debug, Serialize)]
pub struct Department {
    pub id: DepartmentId,
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub level: DepartmentLevel,
    pub kind: DepartmentKind,
    pub parent_id: Option<DepartmentId>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// 用户: a person or a system account, belonging to one department.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub department_id: DepartmentId,
    pub is_system: bool,
    pub status: UserStatus,
    pub locked_until_ms: Option<i64>,
    pub must_change_password: bool,
    pub last_login_at_ms: Option<i64>,
    /// A system account's last SM2-signed request the platform accepted (签名请求), at most a minute stale.
    pub last_signed_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// API 令牌: a system's bearer credential; the secret is shown once and stored hashed.
#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the secret, to recognise it in a list.
    pub prefix: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

/// 节点身份: this platform node's level, network zone and region (SPEC §2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeIdentity {
    pub name: String,
    pub level: DepartmentLevel,
    pub zone: Zone,
    pub region_code: String,
}
