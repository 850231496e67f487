//! 审计动作: what an audit event records, as a closed list with its code (stored, exported, searched,
//! chained — the code never changes) and its Chinese name (the portal, reports). A state change records one
//! of these; an event read back from the trail carries the code, which [`Action::parse`] names again.

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $code:literal / $zh:literal,)+) => {
        /// 审计动作 (办法 第二十一条: 全程留痕): the action of an audit event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($(#[$doc])* $variant),+ }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The code stored in the trail, e.g. `catalog.publish`.
            pub fn code(self) -> &'static str {
                match self { $(Action::$variant => $code),+ }
            }

            /// The Chinese name shown in the portal and in reports.
            pub fn label_zh(self) -> &'static str {
                match self { $(Action::$variant => $zh),+ }
            }

            /// The action of a stored code; `None` for a code this release does not know.
            pub fn parse(code: &str) -> Option<Action> {
                match code { $($code => Some(Action::$variant),)+ _ => None }
            }
        }
    };
}

actions! {
    // Identity (C1).
    AuthLogin => "auth.login" / "登录",
    AuthLoginFailed => "auth.login_failed" / "登录失败",
    AuthLocked => "auth.locked" / "账户锁定",
    AuthLogout => "auth.logout" / "退出登录",
    DepartmentCreate => "department.create" / "登记部门",
    DepartmentUpdate => "department.update" / "修改部门",
    UserCreate => "user.create" / "开设账户",
    UserUpdate => "user.update" / "修改账户",
    UserChangePassword => "user.change_password" / "修改密码",
    UserResetPassword => "user.reset_password" / "重置密码",
    UserSm2KeySet => "user.sm2_key_set" / "登记签名公钥",
    UserSm2KeyRemoved => "user.sm2_key_removed" / "删除签名公钥",
    RoleAssign => "role.assign" / "授予角色",
    RoleRevoke => "role.revoke" / "撤销角色",
    TokenCreate => "token.create" / "签发令牌",
    TokenRevoke => "token.revoke" / "吊销令牌",
    NodeSetIdentity => "node.set_identity" / "设置节点身份",
    // Reference data.
    CalendarImportYear => "calendar.import_year" / "导入节假日安排",
    RegionUpsert => "region.upsert" / "更新行政区划",
    // The catalog (C2).
    CatalogCreate => "catalog.create" / "编制目录",
    CatalogUpdateDraft => "catalog.update_draft" / "修改目录草稿",
    CatalogSubmit => "catalog.submit" / "提交审核",
    CatalogReturn => "catalog.return" / "审核退回",
    CatalogPublish => "catalog.publish" / "审核通过并发布",
    CatalogRevise => "catalog.revise" / "修订目录",
    CatalogWithdraw => "catalog.withdraw" / "撤销目录",
    CatalogImport => "catalog.import" / "导入目录",
    CatalogMerge => "catalog.merge" / "项目目录并入",
    CatalogClassificationCreate => "catalog.classification_create" / "新增资源分类",
    CatalogChangeEvent => "catalog.change_event" / "登记目录更新事由",
    CatalogProjectCreate => "catalog.project_create" / "登记信息化项目",
    CatalogProjectAccept => "catalog.project_accept" / "项目验收",
    // Information systems and projects (C8, C9).
    SystemCreate => "system.create" / "登记信息系统",
    SystemUpdate => "system.update" / "修改信息系统登记",
    SystemImport => "system.import" / "导入信息系统台账",
    SystemZombieResponse => "system.zombie_response" / "反馈僵尸系统研判意见",
    SystemZombieDecision => "system.zombie_decision" / "认定僵尸系统",
    SystemCleanupPlan => "system.cleanup_plan" / "制定清理计划",
    SystemCleanupProgress => "system.cleanup_progress" / "登记清理进展",
    ReportSave => "report.save" / "编制自查报告",
    ReportSubmit => "report.submit" / "报送自查报告",
    ReportReview => "report.review" / "审核自查报告",
    ProjectFile => "project.file" / "项目备案",
    ProjectAdvance => "project.advance" / "项目阶段推进",
    ProjectGateOverride => "project.gate_override" / "越过审核关口",
    // Data quality (C6).
    QualityDimensionUpdate => "quality.dimension_update" / "调整质量维度",
    QualityRuleCreate => "quality.rule_create" / "新增质量规则",
    QualityRuleRetire => "quality.rule_retire" / "停用质量规则",
    QualityCheck => "quality.check" / "数据质量检查",
    ObjectionFile => "quality.objection_file" / "提出数据疑义",
    ObjectionEvidence => "quality.objection_evidence" / "上传疑义佐证材料",
    ObjectionAnswer => "quality.objection_answer" / "答复数据疑义",
    ObjectionAccept => "quality.objection_accept" / "认可疑义答复",
    ObjectionEscalate => "quality.objection_escalate" / "疑义提请裁定",
    ObjectionRule => "quality.objection_rule" / "裁定数据疑义",
    ObjectionReasonUpdate => "quality.objection_reason_update" / "维护疑义原因",
    ElementDeclare => "quality.element_declare" / "声明基础数据元素",
    ElementMap => "quality.element_map" / "维护数据元素映射",
    Reconcile => "quality.reconcile" / "一数一源比对",
    ThemeCreate => "quality.theme_create" / "建立主题库",
    ThemeRefresh => "quality.theme_refresh" / "更新主题库",
    // Sharing (C3).
    RequestCreate => "request.create" / "提交共享申请",
    RequestSubscribe => "request.subscribe" / "订阅无条件共享资源",
    RequestApprove => "request.approve" / "同意共享",
    RequestReject => "request.reject" / "不予同意",
    RequestWithdraw => "request.withdraw" / "撤回申请",
    RequestEscalate => "request.escalate" / "提请协商协调",
    RequestMessage => "request.message" / "办理留言",
    RequestOverdue => "request.overdue" / "办理逾期",
    GrantCreate => "grant.create" / "创建授权",
    GrantRenew => "grant.renew" / "授权续期",
    GrantRevoke => "grant.revoke" / "撤销授权",
    // Exchange (C4).
    ExchangeBind => "exchange.bind" / "挂接数据",
    ExchangeFileUpload => "exchange.file_upload" / "上传文件",
    ExchangeFileDelete => "exchange.file_delete" / "删除文件",
    DataBatch => "data.batch" / "数据归集",
    NodeRegister => "node.register" / "前置机注册",
    NodeUpdate => "node.update" / "前置机变更",
    DataLookup => "data.lookup" / "联机查询",
    DataQuery => "data.query" / "条件查询",
    DataExport => "data.export" / "批量下载",
    DataChanges => "data.changes" / "订阅变更",
    DataProxy => "data.proxy" / "系统对接调用",
    DataFileDownload => "data.file_download" / "下载文件",
    DataRekey => "data.rekey" / "重新加密",
    KeysRotate => "keys.rotate" / "轮换数据密钥",
    KeysRetire => "keys.retire" / "停用数据密钥",
    // The trail itself.
    AuditArchive => "audit.archive" / "归档审计日志",
    AuditVerify => "audit.verify" / "核验审计链",
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut codes: Vec<&str> = Action::ALL.iter().map(|a| a.code()).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "an action code appears twice");
        for a in Action::ALL {
            assert_eq!(Action::parse(a.code()), Some(*a));
            assert!(!a.label_zh().is_empty());
            assert!(a.code().split_once('.').is_some_and(|(d, v)| !d.is_empty() && !v.is_empty()), "{a}");
        }
        assert_eq!(Action::parse("no.such_action"), None);
    }
}
