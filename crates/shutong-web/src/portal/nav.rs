//! 门户导航 (江苏方案 三(二)3, 政务信息共享网站): the portal's navigation, grouped by task, each group a menu
//! of the pages the user may use. The groups are those of the whole programme (目录, 共享, 交换, 质量, 系统与项目,
//! 评估督查, 开放, 审计, 管理); a group shows once it holds a page its user may use, so modules add their pages
//! here and the bar stays one line. Who may use a page is asked of the services ([`Access::of`]), never
//! restated here.

use shutong_identity::Principal;

/// A page in a group's menu.
pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    /// The layout section of the pages under this entry.
    pub section: &'static str,
}

/// A group of the bar: a task, with its menu.
pub struct NavGroup {
    pub key: &'static str,
    pub label: &'static str,
    pub items: Vec<NavItem>,
    /// The page shown belongs to this group.
    pub active: bool,
}

/// One step of the breadcrumb trail; the last has no link.
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

/// What the user may use, as the services decide it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Access {
    /// Review catalog entries (the sharing authority, platform administrators).
    pub review: bool,
    /// Compile and import catalog entries.
    pub compile: bool,
    /// Read the whole audit trail.
    pub read_audit: bool,
    /// Read some department's users.
    pub read_users: bool,
    /// Keep or read a department's inventory, reports and projects (a user of a department, or a reader of all).
    pub systems: bool,
    /// Work a funding queue: the development and reform or finance department, the authority.
    pub funding: bool,
    /// See exchange nodes (前置机): a department's users see theirs; the authority, administrators, auditors all.
    pub nodes: bool,
}

impl Access {
    pub async fn of(db: &shutong_store::Db, p: &Principal) -> Access {
        // A rule that cannot be read (the database away) shows less, never more.
        let review = shutong_catalog::is_authority(db, p).await.unwrap_or(false);
        let compile = shutong_catalog::may_compile(p, review);
        let standing = shutong_systems::standing_in(db, p).await.unwrap_or_default();
        Access {
            review,
            compile,
            read_audit: p.can_read_audit(),
            read_users: p.can_read_some_users(),
            systems: standing.reads_all || p.department_id.is_some(),
            funding: standing.approver || standing.finance || standing.authority,
            nodes: shutong_exchange::nodes::may_see_nodes(db, p).await.unwrap_or(false),
        }
    }
}

/// The bar for `access`, the group of `section` marked active; groups without a page are left out.
pub fn groups(access: &Access, section: &str) -> Vec<NavGroup> {
    let item = |label, href, section| NavItem { label, href, section };
    let all: [(&'static str, &'static str, Vec<Option<NavItem>>); 9] = [
        (
            "catalog",
            "目录",
            vec![
                Some(item("资源目录", "/catalog", "catalog")),
                access.review.then(|| item("目录审核", "/catalog/review", "review")),
                access.compile.then(|| item("导入目录", "/catalog/import", "import")),
                Some(item("目录统计", "/catalog/stats", "stats")),
            ],
        ),
        (
            "sharing",
            "共享",
            vec![
                Some(item("共享申请", "/requests", "requests")),
                Some(item("授权", "/grants", "grants")),
                Some(item("待办", "/inbox", "inbox")),
            ],
        ),
        ("exchange", "交换", vec![access.nodes.then(|| item("前置机", "/nodes", "nodes"))]),
        (
            "quality",
            "质量",
            vec![Some(item("数据质量", "/quality", "quality")), Some(item("数据疑义", "/quality/objections", "objections"))],
        ),
        (
            "systems",
            "系统与项目",
            vec![
                access.systems.then(|| item("信息系统台账", "/systems", "systems")),
                access.systems.then(|| item("僵尸系统", "/systems/zombies", "zombies")),
                access.systems.then(|| item("自查报告与清单", "/reports", "reports")),
                access.systems.then(|| item("项目备案", "/projects", "projects")),
                access.funding.then(|| item("资金审核", "/projects/review", "funding")),
            ],
        ),
        ("evaluation", "评估督查", vec![]),
        ("open", "开放", vec![]),
        ("audit", "审计", vec![access.read_audit.then(|| item("审计日志", "/audit", "audit"))]),
        (
            "admin",
            "管理",
            vec![
                Some(item("部门", "/departments", "departments")),
                access.read_users.then(|| item("用户", "/users", "users")),
                Some(item("我的账户", "/account", "account")),
                Some(item("API 文档", "/api/v1/docs/", "api")),
            ],
        ),
    ];
    all.into_iter()
        .map(|(key, label, items)| {
            let items: Vec<NavItem> = items.into_iter().flatten().collect();
            let active = items.iter().any(|i| i.section == section);
            NavGroup { key, label, items, active }
        })
        .filter(|g| !g.items.is_empty())
        .collect()
}

/// The trail to the page shown: 工作台 › group › the group's page › this page (when it is a page of its own).
pub fn crumbs(groups: &[NavGroup], section: &str, title: &str) -> Vec<Crumb> {
    let mut out = vec![Crumb { label: "工作台".into(), href: Some("/".into()) }];
    let found = groups.iter().find_map(|g| g.items.iter().find(|i| i.section == section).map(|i| (g, i)));
    if let Some((g, i)) = found {
        out.push(Crumb { label: g.label.into(), href: None });
        out.push(Crumb { label: i.label.into(), href: Some(i.href.into()) });
    }
    if out.last().is_none_or(|c| c.label != title) {
        out.push(Crumb { label: title.into(), href: None });
    }
    if let Some(last) = out.last_mut() {
        last.href = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(gs: &[NavGroup]) -> Vec<&str> {
        gs.iter().map(|g| g.label).collect()
    }

    #[test]
    fn groups_show_only_what_the_user_may_use() {
        let staff = groups(&Access { compile: true, ..Access::default() }, "requests");
        assert_eq!(labels(&staff), ["目录", "共享", "质量", "管理"]);
        assert!(staff.iter().find(|g| g.key == "sharing").unwrap().active);
        let admin = groups(&Access { review: true, compile: true, read_audit: true, read_users: true, ..Access::default() }, "audit");
        assert_eq!(labels(&admin), ["目录", "共享", "质量", "审计", "管理"]);
        let keeper = groups(&Access { systems: true, ..Access::default() }, "systems");
        let group = keeper.iter().find(|g| g.key == "systems").unwrap();
        assert!(group.active && group.items.iter().all(|i| i.href != "/projects/review"), "the funding queue is the reviewers'");
        let funding = groups(&Access { systems: true, funding: true, ..Access::default() }, "funding");
        assert!(funding.iter().find(|g| g.key == "systems").unwrap().items.iter().any(|i| i.href == "/projects/review"));
        let users = admin.iter().find(|g| g.key == "admin").unwrap();
        assert!(users.items.iter().any(|i| i.href == "/users"));
        let plain = groups(&Access::default(), "dashboard");
        assert!(plain.iter().find(|g| g.key == "admin").unwrap().items.iter().all(|i| i.href != "/users"));
        assert!(plain.iter().all(|g| !g.active));
    }

    #[test]
    fn crumbs_lead_from_home_through_the_group() {
        let gs = groups(&Access::default(), "requests");
        let c = crumbs(&gs, "requests", "共享申请 12");
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["工作台", "共享", "共享申请", "共享申请 12"]);
        assert_eq!(c[2].href.as_deref(), Some("/requests"));
        assert!(c[3].href.is_none());
        let home = crumbs(&gs, "dashboard", "工作台");
        assert_eq!(home.len(), 1);
        assert!(home[0].href.is_none());
    }
}
