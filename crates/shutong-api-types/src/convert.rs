//! Conversions between the domain crates' types and the wire types (feature `domain`, enabled by the
//! server; a client of the API does not need the domain crates). Output views convert from the domain's,
//! and the bodies that carry a domain input (a resource document, a row filter, a binding, a query) convert
//! into it. Every conversion names each field, so that a field added on one side and not the other does not
//! compile.

use shutong_catalog as dc;
use shutong_exchange as dx;
use shutong_reference::MaskKind as DomainMaskKind;
use shutong_sharing as ds;
use shutong_systems as dy;

use crate::{catalog as wc, exchange as wx, sharing as ws, systems as wy};

fn vec<A: Into<B>, B>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(Into::into).collect()
}

fn opt<A: Into<B>, B>(v: Option<A>) -> Option<B> {
    v.map(Into::into)
}

fn into<A: Into<B>, B>(v: A) -> B {
    v.into()
}

/// A value list converted both ways, variant by variant (the compiler checks both sides have every variant).
macro_rules! same_list {
    ($domain:ty => $wire:ident :: $name:ident { $($v:ident),+ $(,)? }) => {
        impl From<$domain> for $wire::$name {
            fn from(v: $domain) -> Self { match v { $(<$domain>::$v => $wire::$name::$v),+ } }
        }
        impl From<$wire::$name> for $domain {
            fn from(v: $wire::$name) -> Self { match v { $($wire::$name::$v => <$domain>::$v),+ } }
        }
    };
}

/// A struct converted field by field: plain fields move, the others go through the named conversion.
macro_rules! mirror {
    ($from:ty => $to:ty { $($f:ident),* $(,)? } $(; $($g:ident : $conv:expr),+ $(,)?)?) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                Self { $($f: v.$f,)* $($($g: ($conv)(v.$g),)+)? }
            }
        }
    };
}

// ------------------------------------------------------------------ catalog

same_list!(dc::SharingType => wc::SharingType { Unconditional, Conditional, NotShared });
same_list!(dc::DataType => wc::DataType { Char, Numeric, Currency, Date, DateTime, Logical, Memo, General, Double, Integer, Float });
same_list!(dc::UpdateCycle => wc::UpdateCycle { Realtime, Daily, Weekly, Monthly, Quarterly, HalfYearly, Yearly, Irregular });
same_list!(dc::ResourceFormat => wc::ResourceFormat { Database, ElectronicFile, Spreadsheet, Image, Streaming, SelfDescribing, ServiceInterface });
same_list!(dc::SharingMethod => wc::SharingMethod { SystemIntegration, ExchangeNode, OnlineQuery, BulkDownload });
same_list!(dc::Secrecy => wc::Secrecy { NonClassified, Classified });
same_list!(dc::Network => wc::Network { Outer, Inner, Dedicated });
same_list!(dc::VersionStatus => wc::VersionStatus { Draft, Submitted, Returned, Published, Superseded, Withdrawn });
same_list!(DomainMaskKind => wc::MaskKind { IdNumber, Mobile, Landline, Name, Address, CreditCode, BankCard, Email });

mirror!(dc::InfoItem => wc::InfoItem { name, length, required, is_key, sharing_condition, standard, is_base_item };
    data_type: into, mask: opt, sharing_type: into);
mirror!(wc::InfoItem => dc::InfoItem { name, length, required, is_key, sharing_condition, standard, is_base_item };
    data_type: into, mask: opt, sharing_type: into);
mirror!(dc::ResourceDocument => wc::ResourceDocument {
    name, summary, sharing_condition, permitted_usage, legal_basis, open_to_public, open_condition, related_codes,
    source_system, contact, record_count, storage_mb, tags };
    format: into, items: vec, sharing_type: into, sharing_methods: vec, update_cycle: into, secrecy: into, network: into);
mirror!(wc::ResourceDocument => dc::ResourceDocument {
    name, summary, sharing_condition, permitted_usage, legal_basis, open_to_public, open_condition, related_codes,
    source_system, contact, record_count, storage_mb, tags };
    format: into, items: vec, sharing_type: into, sharing_methods: vec, update_cycle: into, secrecy: into, network: into);
mirror!(dc::ResourceView => wc::ResourceView {
    version, latest_version, published_version, classification_code, classification_name, provider_department_id,
    provider_name, provider_code, provider_region_code, created_at_ms, created_by, submitted_at_ms, reviewed_at_ms,
    reviewed_by, return_reason, published_at_ms, withdrawn_at_ms, withdraw_reason };
    code: into, status: into, resource_status: into, document: into);
mirror!(dc::VersionSummary => wc::VersionSummary {
    version, name, created_at_ms, created_by, submitted_at_ms, reviewed_at_ms, reviewed_by, return_reason, published_at_ms };
    status: into);
mirror!(dc::ResourceSummary => wc::ResourceSummary {
    name, latest_version, published_version, classification_code, provider_department_id, provider_name,
    open_to_public, updated_at_ms };
    code: into, status: into, sharing_type: into, format: into, update_cycle: into);
mirror!(dc::rules::Violation => wc::Violation { field, message }; rule: |r: &str| r.to_string());
mirror!(dc::Classification => wc::Classification { code, name, parent_code, level });
mirror!(dc::ChangeEvent => wc::ChangeEvent {
    id, department_id, department_name, kind, description, occurred_on, due_on, overdue, resolved_at_ms, resolved_by, resolution });
mirror!(dc::Count => wc::Count { key, label, count });
mirror!(dc::CatalogStats => wc::CatalogStats { published, drafts_and_pending, shareable_share, open_share, overdue_change_events };
    by_class: vec, by_department: vec, by_sharing_type: vec);
mirror!(dc::search::SearchHit => wc::SearchHit { code, name, summary, provider_name, sharing_type, classification_code, score });
mirror!(dc::search::FacetCount => wc::FacetCount { value, label, count });
mirror!(dc::search::SearchResults => wc::SearchResults { total, next_cursor };
    hits: vec,
    facets: |f: std::collections::BTreeMap<String, Vec<dc::search::FacetCount>>| f.into_iter().map(|(k, v)| (k, vec(v))).collect());
mirror!(dc::transfer::ImportIssue => wc::ImportIssue { sheet, row, column, reason });
mirror!(dc::transfer::ImportReport => wc::ImportReport { format, resources, items, committed }; codes: vec, issues: vec);
mirror!(dc::Project => wc::Project { id, name, department_id, status, resources, created_at_ms, accepted_at_ms });

// ------------------------------------------------------------------ sharing

same_list!(ds::RequestKind => ws::RequestKind { Subscription, Application, Negotiation });
same_list!(ds::RequestStatus => ws::RequestStatus { Pending, Approved, Rejected, Withdrawn, Negotiating, Coordinating, LeadingGroup });
same_list!(ds::Stage => ws::Stage { Answer, Negotiation, Coordination, LeadingGroup });
same_list!(ds::Purpose => ws::Purpose { AdministrativeBasis, WorkReference, DataVerification, BusinessCollaboration, Other });
same_list!(ds::AccessMethod => ws::AccessMethod { OnlineQuery, BulkDownload, Subscription, SystemIntegration });
same_list!(ds::Side => ws::Side { Consumer, Provider, Owner });
same_list!(ds::GrantOrigin => ws::GrantOrigin { Subscription, Approval, Negotiation, Coordination, LeadingGroup });
same_list!(ds::GrantState => ws::GrantState { Active, NotYetValid, Expired, Revoked });
same_list!(ds::FilterOp => ws::FilterOp { Eq, In, Prefix });

mirror!(ds::RowCondition => ws::RowCondition { item, values }; op: into);
mirror!(ws::RowCondition => ds::RowCondition { item, values }; op: into);
mirror!(ds::RowFilter => ws::RowFilter {}; conditions: vec);
mirror!(ws::RowFilter => ds::RowFilter {}; conditions: vec);
mirror!(ds::RequestView => ws::RequestView {
    id, resource_code, resource_name, resource_version, consumer_department_id, consumer_name, provider_department_id,
    provider_name, owner_department_id, owner_name, items, purpose_detail, basis, period_from, period_to, expected_volume,
    submitted_at_ms, submitted_by, submitted_on, due_on, stage_due_on, overdue, answered_at_ms, answered_on, answered_by,
    answer_reason, answered_late, grant_id };
    kind: into, status: into, stage: into, purpose: into, access_methods: vec, next_stage: opt);
mirror!(ds::EscalationView => ws::EscalationView {
    id, owner_department_id, owner_name, opened_at_ms, opened_by, opened_on, reason, due_on, overdue, closed_at_ms,
    closed_on, closed_by, outcome, outcome_note };
    stage: into);
mirror!(ds::MessageView => ws::MessageView { id, at_ms, author, department_id, department_name, body }; stage: into);
mirror!(ds::RequestDetail => ws::RequestDetail {}; request: into, escalations: vec, messages: vec, grant: opt);
mirror!(ds::GrantView => ws::GrantView {
    id, resource_code, resource_name, consumer_department_id, consumer_name, provider_department_id, provider_name,
    request_id, items, purpose_detail, valid_from, valid_to, daily_quota, clear_text, created_at_ms, created_by,
    renewed_at_ms, renewed_by, revoked_at_ms, revoked_by, revoke_reason };
    origin: into, row_filter: into, purpose: into, access_methods: vec, state: into);
mirror!(ds::InboxItem => ws::InboxItem {
    kind, title, request_id, grant_id, resource_code, resource_name, counterpart, due_on, overdue, workdays_left });
mirror!(ds::Notification => ws::Notification { id, department_id, kind, target_kind, target_id, message, due_on, created_at_ms, read });
/// The sharing inbox; the exchange nodes gone silent are added by the caller (they are the data plane's).
impl From<ds::Inbox> for ws::Inbox {
    fn from(v: ds::Inbox) -> Self {
        ws::Inbox {
            today: v.today,
            unread: v.unread,
            waiting: vec(v.waiting),
            overdue: vec(v.overdue),
            notifications: vec(v.notifications),
            silent_nodes: Vec::new(),
        }
    }
}
mirror!(ds::SweepReport => ws::SweepReport { today, overdue, reminders, grants_expiring, grants_expired });
mirror!(ds::ProviderFigures => ws::ProviderFigures {
    department_id, department_name, received, approved, rejected, withdrawn, pending, overdue_now, answered_on_time,
    answered_late, subscriptions, in_escalation, grants_in_force });
mirror!(ds::MonthFigures => ws::MonthFigures { month, answered_on_time, answered_late });
mirror!(ds::SharingStats => ws::SharingStats { today }; providers: vec, totals: into, months: vec);

// ------------------------------------------------------------------ exchange

same_list!(dx::BindingKind => wx::BindingKind { Dataset, Service, Files });
same_list!(dx::IngestMode => wx::IngestMode { Full, Incremental });
same_list!(dx::DataFormat => wx::DataFormat { Csv, Ndjson, Xlsx, Parquet });
same_list!(dx::BatchStatus => wx::BatchStatus { Loading, Committed, Rejected, Failed });
same_list!(dx::figures::Freshness => wx::Freshness { Fresh, Overdue, NeverLoaded, Irregular });
mirror!(dx::figures::DatasetFreshness => wx::DatasetFreshness {
    resource_code, resource_name, provider_department_id, rows, last_batch_at_ms, due_on };
    update_cycle: into, freshness: into);

impl From<dx::BindingView> for wx::BindingView {
    fn from(v: dx::BindingView) -> Self {
        // `table_name` is the pool's own and never leaves the platform.
        wx::BindingView {
            resource_code: v.resource_code.into(),
            provider_department_id: v.provider_department_id,
            kind: v.kind.into(),
            key_item: v.key_item,
            columns: v.columns,
            service_url: v.service_url,
            last_seq: v.last_seq,
            reset_seq: v.reset_seq,
            row_count: v.row_count,
            last_batch_at_ms: v.last_batch_at_ms,
            created_at_ms: v.created_at_ms,
            created_by: v.created_by,
            key_sealed: v.key_sealed,
        }
    }
}
mirror!(wx::NewBinding => dx::NewBinding { key_item, service_url }; kind: opt);
mirror!(dx::RejectedRow => wx::RejectedRow { row, key, field, reason });
mirror!(dx::BatchReport => wx::BatchReport {
    id, resource_code, batch_id, encoding, rows_received, rows_upserted, rows_deleted, rows_rejected, rows_after,
    first_seq, last_seq, started_at_ms, finished_at_ms, submitted_by, failure, replayed, parts };
    mode: into, format: into, status: into, rejects: vec);
mirror!(wx::QuerySpec => dx::QuerySpec { after, limit }; conditions: vec, grant_id: |g: Option<i64>| g.map(ds::GrantId));
mirror!(dx::RecordPage => wx::RecordPage { records, next_after, grant_id, items });
mirror!(dx::Change => wx::Change { seq, op, key, record });
mirror!(dx::ChangePage => wx::ChangePage { next_since, last_seq, reset }; changes: vec);
mirror!(dx::FileView => wx::FileView { id, resource_code, name, media_type, size, sha256, uploaded_at_ms, uploaded_by });
mirror!(wx::ExemptionQuery => dx::ExemptionQuery { subject, items, fetch });
mirror!(dx::ItemAvailability => wx::ItemAvailability { item, available, resource_code, resource_name, grant_id, reason, value });
mirror!(dx::ExemptionAnswer => wx::ExemptionAnswer { subject_kind, still_required }; items: vec);

// ------------------------------------------------------------------ systems and projects

same_list!(dy::UsageScope => wy::UsageScope { Unit, Department, CrossDepartment, Public });
same_list!(dy::UsageFrequency => wy::UsageFrequency { Daily, Weekly, Monthly, Yearly, Rarely });
same_list!(dy::FundingSource => wy::FundingSource { Budget, Special, SelfFunded, Other });
same_list!(dy::SystemNetwork => wy::SystemNetwork { GovOuter, GovInner, Dedicated, Internet });
same_list!(dy::SystemStatus => wy::SystemStatus { InUse, Suspended, Retired });
same_list!(dy::OmStatus => wy::OmStatus { Ongoing, Stopped });
same_list!(dy::ZombieCriterion => wy::ZombieCriterion { Detached, Replaceable, Idle, Unmaintained, LittleUsed });
same_list!(dy::ZombieResponse => wy::ZombieResponse { Confirm, Dispute });
same_list!(dy::ZombieDecision => wy::ZombieDecision { Zombie, NotZombie });
same_list!(dy::CleanupAction => wy::CleanupAction { ShutDown, Integrate, Migrate });
same_list!(dy::CleanupProgress => wy::CleanupProgress { Planned, InProgress, Done });
same_list!(dy::ReportStatus => wy::ReportStatus { Draft, Submitted, Accepted, Returned });
same_list!(dy::ProjectStage => wy::ProjectStage { Filed, Approved, Construction, Accepted, Operation });
same_list!(dy::Gate => wy::Gate { Approval, Acceptance, OmFunding });

fn money(v: dy::Money) -> String {
    v.to_string()
}
fn id_of(v: dy::SystemId) -> i64 {
    v.0
}

mirror!(dy::SystemDocument => wy::SystemDocument {
    name, function, approving_department, approval_date, ip_addresses, host_instances, access_url, unit,
    last_update_date, shares_across_departments, connected, produces, consumes, accounts, nodes };
    usage_scope: into, usage_frequency: into, build_cost: money, om_cost: money, funding_source: into, network: into,
    status: into, om_status: into);

/// Reads a money field of a wire document, collecting the problem under the field's name.
fn money_in(field: &str, value: &str, problems: &mut Vec<dy::FieldProblem>) -> dy::Money {
    dy::Money::parse(value).unwrap_or_else(|message| {
        problems.push(dy::FieldProblem { field: field.into(), message });
        dy::Money::default()
    })
}

impl TryFrom<wy::SystemDocument> for dy::SystemDocument {
    type Error = Vec<dy::FieldProblem>;
    fn try_from(v: wy::SystemDocument) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        let build_cost = money_in("build_cost", &v.build_cost, &mut problems);
        let om_cost = money_in("om_cost", &v.om_cost, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(dy::SystemDocument {
            name: v.name,
            function: v.function,
            usage_scope: v.usage_scope.into(),
            usage_frequency: v.usage_frequency.into(),
            approving_department: v.approving_department,
            approval_date: v.approval_date,
            build_cost,
            om_cost,
            funding_source: v.funding_source.into(),
            ip_addresses: v.ip_addresses,
            host_instances: v.host_instances,
            access_url: v.access_url,
            network: v.network.into(),
            status: v.status.into(),
            unit: v.unit,
            om_status: v.om_status.into(),
            last_update_date: v.last_update_date,
            shares_across_departments: v.shares_across_departments,
            connected: v.connected,
            produces: v.produces,
            consumes: v.consumes,
            accounts: v.accounts,
            nodes: v.nodes,
        })
    }
}

mirror!(dy::ZombieState => wy::ZombieState { response_reason, decision_reason }; response: opt, decision: opt);
mirror!(dy::Cleanup => wy::Cleanup { due_on, note, updated_at_ms, updated_by };
    action: into, into_system_id: |v: Option<dy::SystemId>| v.map(|i| i.0), progress: into);
mirror!(dy::SystemView => wy::SystemView { department_name, version, merger_flag, created_at_ms, created_by, updated_at_ms, updated_by };
    id: id_of, department_id: |d: dy::DepartmentId| d.0, document: into, zombie: into, cleanup: opt);
mirror!(dy::SystemSummary => wy::SystemSummary { department_name, name, connected, merger_flag, version, updated_at_ms };
    id: id_of, department_id: |d: dy::DepartmentId| d.0, status: into, network: into, usage_scope: into, zombie_decision: opt);
mirror!(dy::Page<dy::SystemSummary> => wy::SystemList { next_cursor }; items: vec);
mirror!(dy::SystemVersion => wy::SystemVersion { version, changed_at_ms, changed_by }; document: into);
mirror!(dy::CriterionResult => wy::CriterionResult { met, evidence }; criterion: into);
mirror!(dy::ZombieVerdict => wy::ZombieVerdict { system_name, department_name, suspected };
    system_id: id_of, department_id: |d: dy::DepartmentId| d.0, status: into, criteria: vec, state: into, cleanup: opt);
mirror!(dy::ZombieReviewStep => wy::ZombieReviewStep { step, value, reason, at_ms, by }; id: |i: dy::ZombieReviewId| i.0, evidence: vec);

mirror!(dy::ProjectDocument => wy::ProjectDocument { name, construction_unit, content, protection_filing, classified_filing };
    total_investment: money, om_budget: money, funding_channel: into, systems: |s: Vec<dy::SystemId>| s.into_iter().map(|i| i.0).collect());

impl TryFrom<wy::ProjectDocument> for dy::ProjectDocument {
    type Error = Vec<dy::FieldProblem>;
    fn try_from(v: wy::ProjectDocument) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        let total_investment = money_in("total_investment", &v.total_investment, &mut problems);
        let om_budget = money_in("om_budget", &v.om_budget, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(dy::ProjectDocument {
            name: v.name,
            construction_unit: v.construction_unit,
            total_investment,
            om_budget,
            funding_channel: v.funding_channel.into(),
            content: v.content,
            systems: v.systems.into_iter().map(dy::SystemId).collect(),
            protection_filing: v.protection_filing,
            classified_filing: v.classified_filing,
        })
    }
}

mirror!(dy::StageRecord => wy::StageRecord { entered_on, document, override_reason, at_ms, by }; stage: into);
mirror!(dy::GateState => wy::GateState { open, reasons }; gate: into);
mirror!(dy::FiledProject => wy::FiledProject { department_name, catalog_project_id, created_at_ms, created_by };
    id: |i: dy::FiledProjectId| i.0, department_id: |d: dy::DepartmentId| d.0, stage: into, document: into, stages: vec,
    gates: vec, next_stage: opt);
mirror!(dy::Page<dy::FiledProject> => wy::ProjectList { next_cursor }; items: vec);
mirror!(dy::SystemImportReport => wy::SystemImportReport { systems, created, updated, unchanged };
    ids: |v: Vec<dy::SystemId>| v.into_iter().map(|i| i.0).collect());
mirror!(dy::DeclaredNeed => wy::DeclaredNeed { resource, provider, purpose });
mirror!(wy::DeclaredNeed => dy::DeclaredNeed { resource, provider, purpose });
mirror!(dy::ReportContent => wy::ReportContent { year, overview, problems, measures }; needs: vec);
mirror!(wy::ReportContent => dy::ReportContent { year, overview, problems, measures }; needs: vec);
mirror!(dy::CleanupLine => wy::CleanupLine { name, reasons, action, due_on, progress }; system_id: id_of);
mirror!(dy::ConnectLine => wy::ConnectLine { name, reasons }; system_id: id_of);
mirror!(dy::NeedLine => wy::NeedLine { resource_code, resource, provider, purpose, source });
mirror!(dy::ReportLists => wy::ReportLists { systems, in_use, resources_provided };
    build_cost: money, om_cost: money, cleanup: vec, connect: vec, needs: vec);
mirror!(dy::ReportView => wy::ReportView {
    department_name, version, created_at_ms, created_by, submitted_at_ms, reviewed_at_ms, reviewed_by, review_note };
    department_id: |d: dy::DepartmentId| d.0, status: into, content: into, lists: into);
mirror!(dy::RegisterResource => wy::RegisterResource { code, name, items, records, storage_bytes });
mirror!(dy::RegisterSystem => wy::RegisterSystem { name }; id: id_of, status: into, resources: vec);
mirror!(dy::RegisterTotals => wy::RegisterTotals { systems, resources, items, records, storage_bytes });
mirror!(dy::AssetRegister => wy::AssetRegister { department_name };
    department_id: |d: dy::DepartmentId| d.0, systems: vec, unattributed: vec, totals: into);

#[cfg(test)]
mod tests {
    //! The wire's value lists say what the domain's say: the same codes and the same Chinese names, in the
    //! same order.

    macro_rules! same_codes {
        ($($domain:ty => $wire:ty),+ $(,)?) => {$(
            let d: Vec<(&str, &str)> = <$domain>::ALL.iter().map(|v| (v.as_str(), v.label_zh())).collect();
            let w: Vec<(&str, &str)> = <$wire>::ALL.iter().map(|v| (v.as_str(), v.label_zh())).collect();
            assert_eq!(d, w, "{}", stringify!($wire));
            for v in <$domain>::ALL {
                assert_eq!(<$wire>::from(*v).as_str(), v.as_str(), "{}", stringify!($wire));
            }
        )+};
    }

    use super::*;

    #[test]
    fn value_lists_match_the_domain() {
        same_codes!(
            dc::SharingType => wc::SharingType, dc::DataType => wc::DataType, dc::UpdateCycle => wc::UpdateCycle,
            dc::ResourceFormat => wc::ResourceFormat, dc::SharingMethod => wc::SharingMethod, dc::Secrecy => wc::Secrecy,
            dc::Network => wc::Network, dc::VersionStatus => wc::VersionStatus,
            ds::RequestKind => ws::RequestKind, ds::RequestStatus => ws::RequestStatus, ds::Stage => ws::Stage,
            ds::Purpose => ws::Purpose, ds::AccessMethod => ws::AccessMethod, ds::Side => ws::Side,
            ds::GrantOrigin => ws::GrantOrigin, ds::GrantState => ws::GrantState, ds::FilterOp => ws::FilterOp,
            dx::BindingKind => wx::BindingKind, dx::IngestMode => wx::IngestMode, dx::DataFormat => wx::DataFormat,
            dx::BatchStatus => wx::BatchStatus,
            dy::UsageScope => wy::UsageScope, dy::UsageFrequency => wy::UsageFrequency, dy::FundingSource => wy::FundingSource,
            dy::SystemNetwork => wy::SystemNetwork, dy::SystemStatus => wy::SystemStatus, dy::OmStatus => wy::OmStatus,
            dy::ZombieCriterion => wy::ZombieCriterion, dy::ZombieResponse => wy::ZombieResponse, dy::ZombieDecision => wy::ZombieDecision,
            dy::CleanupAction => wy::CleanupAction, dy::CleanupProgress => wy::CleanupProgress, dy::ProjectStage => wy::ProjectStage,
            dy::Gate => wy::Gate, dy::ReportStatus => wy::ReportStatus,
        );
        for k in DomainMaskKind::ALL {
            let wire = serde_json::to_value(wc::MaskKind::from(k)).unwrap();
            assert_eq!(wire, serde_json::to_value(k).unwrap());
        }
    }

    #[test]
    fn a_document_goes_through_the_wire_unchanged() {
        let json = serde_json::json!({
            "name": "人口基本信息", "summary": "户籍人口", "format": "数据库", "sharing_type": "conditional",
            "sharing_condition": "用于政务服务", "permitted_usage": "不得转让", "sharing_methods": ["online_query", "批量下载"],
            "update_cycle": "daily", "secrecy": "non_classified", "network": "outer", "tags": ["基础"], "record_count": 5,
            "items": [{"name": "公民身份号码", "data_type": "C", "length": 18, "required": true, "is_key": true,
                       "mask": "id_number", "sharing_type": "unconditional"}],
        });
        let wire: wc::ResourceDocument = serde_json::from_value(json.clone()).unwrap();
        let domain: dc::ResourceDocument = serde_json::from_value(json).unwrap();
        assert_eq!(dc::ResourceDocument::from(wire.clone()), domain);
        assert_eq!(serde_json::to_value(wc::ResourceDocument::from(domain.clone())).unwrap(), serde_json::to_value(&domain).unwrap());
    }
}

// ------------------------------------------------------------------ exchange nodes

same_list!(dx::nodes::FlowDirection => wx::FlowDirection { Publication, Subscription });
same_list!(dx::nodes::FlowState => wx::FlowState { Running, Offline, Stopped });
mirror!(dx::nodes::FlowReport => wx::FlowReport { name, resource_code, lag_rows, lag_seconds, rows_total, rejects, last_transfer_at_ms, error };
    direction: into, state: into);
mirror!(wx::FlowReport => dx::nodes::FlowReport { name, resource_code, lag_rows, lag_seconds, rows_total, rejects, last_transfer_at_ms, error };
    direction: into, state: into);
mirror!(dx::nodes::Heartbeat => wx::Heartbeat { name, version, started_at_ms, outbox_batches, outbox_bytes, outbox_limit_bytes, last_error };
    flows: vec);
mirror!(wx::Heartbeat => dx::nodes::Heartbeat { name, version, started_at_ms, outbox_batches, outbox_bytes, outbox_limit_bytes, last_error };
    flows: vec);
mirror!(dx::nodes::NodeView => wx::ExchangeNode { name, department_id, department_name, account, version, registered_at_ms, last_seen_ms,
    last_transfer_at_ms, silent, last_error };
    id: |i: dx::nodes::NodeId| i.0, report: into);

// ------------------------------------------------------------------ data quality

mod quality {
    use super::*;
    use crate::quality as wq;
    use chrono::{DateTime, Utc};
    use shutong_quality as dq;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    /// Hundredths of a point to points with two decimals.
    fn points(bp: i64) -> f64 {
        bp as f64 / 100.0
    }

    same_list!(dq::Dimension => wq::QualityDimension { Completeness, Conformity, Accuracy, Consistency, Timeliness });
    same_list!(dq::RuleOrigin => wq::RuleOrigin { Derived, Custom });
    same_list!(dq::IdScheme => wq::IdScheme { IdNumber, CreditCode, OrgCode });
    same_list!(dq::CheckCause => wq::CheckCause { Batch, Schedule, Manual });
    same_list!(dq::Grade => wq::QualityGrade { Excellent, Good, Fair, Pass, Fail });
    same_list!(dq::ObjectionState => wq::ObjectionState { Open, Answered, Escalated, Closed });
    same_list!(dq::ObjectionAnswer => wq::ObjectionAnswer { Corrected, Confirmed, Declined });
    same_list!(dq::ObjectionRuling => wq::ObjectionRuling { Upheld, Dismissed });
    same_list!(dq::ObjectionScope => wq::ObjectionScope { Filed, Received });
    same_list!(dq::ConflictKind => wq::ConflictKind { MissingInResource, MissingInAuthoritative, Differs });
    same_list!(dq::ReconcileCause => wq::ReconcileCause { Batch, Schedule, Manual });
    same_list!(dq::ConflictSide => wq::ConflictSide { Authoritative, Resource });
    mirror!(dq::Carrier => wq::ElementCarrier { resource_code, provider_department_id, items, explicit });
    mirror!(dq::BaseElement => wq::BaseElementView { name, key_item, resource_code, items };
        id: |i: dq::ElementId| i.0, carriers: vec);
    mirror!(dq::ItemConsistency => wq::ItemConsistencyView { item, resource_item, compared, differing }; rate: points);
    mirror!(dq::Conflict => wq::ConflictView { key, item, authoritative_value, resource_value };
        id: |i: dq::ConflictId| i.0, kind: into);

    impl From<dq::TemplateItem> for wq::TemplateItemView {
        fn from(v: dq::TemplateItem) -> Self {
            wq::TemplateItemView {
                name: v.name.into(),
                data_type: v.data_type.into(),
                length: v.length,
                mask: opt(v.mask),
                standard: v.standard.map(str::to_string),
            }
        }
    }

    impl From<dq::BaseTemplate> for wq::BaseTemplateView {
        fn from(v: dq::BaseTemplate) -> Self {
            wq::BaseTemplateView {
                code: v.code.into(),
                name: v.name.into(),
                classification: v.classification.into(),
                resource_name: v.resource_name.into(),
                key_item: v.key_item.into(),
                items: vec(v.items),
            }
        }
    }

    mirror!(dq::ThemeItem => wq::ThemeItemView { item, resource_code, member_item });
    mirror!(wq::ThemeItemView => dq::ThemeItem { item, resource_code, member_item });

    impl From<dq::MemberState> for wq::ThemeMemberState {
        fn from(v: dq::MemberState) -> Self {
            wq::ThemeMemberState {
                resource_code: v.resource_code,
                version: v.version,
                last_seq: v.last_seq,
                reset_seq: v.reset_seq,
                last_batch_at: v.last_batch_at_ms.map(at),
            }
        }
    }

    impl From<dq::ThemeRefresh> for wq::ThemeRefreshView {
        fn from(v: dq::ThemeRefresh) -> Self {
            wq::ThemeRefreshView {
                refreshed_at: at(v.refreshed_at_ms),
                mode: v.mode,
                rows_written: v.rows_written,
                rows_deleted: v.rows_deleted,
                batch_id: v.batch_id,
                members: vec(v.members),
                actor: v.actor,
            }
        }
    }

    mirror!(dq::Theme => wq::ThemeView { resource_code, name, lead_department_id, key_item, members, published };
        id: |i: dq::ThemeId| i.0, items: vec, last_refresh: opt);

    impl From<dq::ConsistencyRun> for wq::ConsistencyRunView {
        fn from(v: dq::ConsistencyRun) -> Self {
            wq::ConsistencyRunView {
                id: v.id.0,
                element_id: v.element_id.0,
                resource_code: v.resource_code,
                authoritative_code: v.authoritative_code,
                provider_department_id: v.provider_department_id,
                authoritative_department_id: v.authoritative_department_id,
                cause: v.cause.into(),
                ran_at: at(v.ran_at_ms),
                keys_compared: v.keys_compared,
                missing_in_resource: v.missing_in_resource,
                missing_in_authoritative: v.missing_in_authoritative,
                differing_keys: v.differing_keys,
                items: vec(v.items),
                rate: points(v.rate),
                conflicts_kept: v.conflicts_kept,
                actor: v.actor,
                conflicts: vec(v.conflicts),
            }
        }
    }
    mirror!(dq::ObjectionReason => wq::ObjectionReasonView { code, name, retired });
    mirror!(dq::ObjectionFigures => wq::ObjectionFiguresView { department_id, filed, open, overdue, answered, corrected, confirmed,
        declined, median_hours_to_answer, median_hours_to_close, real_error_percent });

    impl From<dq::Evidence> for wq::ObjectionEvidenceView {
        fn from(v: dq::Evidence) -> Self {
            wq::ObjectionEvidenceView {
                file_name: v.file_name,
                content_type: v.content_type,
                size: v.size,
                sm3: v.sm3,
                uploaded_at: at(v.uploaded_at_ms),
            }
        }
    }

    impl From<dq::Objection> for wq::ObjectionView {
        fn from(v: dq::Objection) -> Self {
            wq::ObjectionView {
                id: v.id.0,
                resource_code: v.resource_code,
                provider_department_id: v.provider_department_id,
                filer_department_id: v.filer_department_id,
                filed_by: v.filed_by,
                grant_id: v.grant_id,
                reason: v.reason,
                reason_name: v.reason_name,
                description: v.description,
                items: v.items,
                keys: v.records.into_iter().map(|r| r.key).collect(),
                state_zh: v.state.label_zh().to_string(),
                state: v.state.into(),
                filed_at: at(v.filed_at_ms),
                due_on: v.due_on,
                overdue: v.overdue,
                answer: opt(v.answer),
                answer_note: v.answer_note,
                answered_at: v.answered_at_ms.map(at),
                answered_by: v.answered_by,
                corrected_batch: v.corrected_batch,
                escalated_at: v.escalated_at_ms.map(at),
                escalation_note: v.escalation_note,
                ruling: opt(v.ruling),
                ruling_note: v.ruling_note,
                ruled_at: v.ruled_at_ms.map(at),
                closed_at: v.closed_at_ms.map(at),
                evidence: opt(v.evidence),
                impact: None,
            }
        }
    }

    impl From<dq::QueuedObjection> for wq::ObjectionView {
        fn from(v: dq::QueuedObjection) -> Self {
            let mut o = wq::ObjectionView::from(v.objection);
            o.impact = Some(wq::ObjectionImpact { grants_in_force: v.grants_in_force, calls_30_days: v.calls_30_days });
            o
        }
    }

    impl From<dq::RuleKind> for wq::QualityRuleKind {
        fn from(k: dq::RuleKind) -> Self {
            use dq::RuleKind as D;
            use wq::QualityRuleKind as W;
            match k {
                D::Required { item } => W::Required { item },
                D::Length { item, max } => W::Length { item, max },
                D::Identifier { item, scheme } => W::Identifier { item, scheme: scheme.into() },
                D::RegionCode { item } => W::RegionCode { item },
                D::CodeList { item, values } => W::CodeList { item, values },
                D::Pattern { item, pattern } => W::Pattern { item, pattern },
                D::Range { item, min, max } => W::Range { item, min, max },
                D::IdConsistency { id_item, birth_item, sex_item } => W::IdConsistency { id_item, birth_item, sex_item },
                D::Freshness { max_age_days } => W::Freshness { max_age_days },
                D::VolumeChange { max_change_percent } => W::VolumeChange { max_change_percent },
                D::Unique { item } => W::Unique { item },
                D::Reference { item, resource } => W::Reference { item, resource },
            }
        }
    }

    impl From<wq::QualityRuleKind> for dq::RuleKind {
        fn from(k: wq::QualityRuleKind) -> Self {
            use dq::RuleKind as D;
            use wq::QualityRuleKind as W;
            match k {
                W::Required { item } => D::Required { item },
                W::Length { item, max } => D::Length { item, max },
                W::Identifier { item, scheme } => D::Identifier { item, scheme: scheme.into() },
                W::RegionCode { item } => D::RegionCode { item },
                W::CodeList { item, values } => D::CodeList { item, values },
                W::Pattern { item, pattern } => D::Pattern { item, pattern },
                W::Range { item, min, max } => D::Range { item, min, max },
                W::IdConsistency { id_item, birth_item, sex_item } => D::IdConsistency { id_item, birth_item, sex_item },
                W::Freshness { max_age_days } => D::Freshness { max_age_days },
                W::VolumeChange { max_change_percent } => D::VolumeChange { max_change_percent },
                W::Unique { item } => D::Unique { item },
                W::Reference { item, resource } => D::Reference { item, resource },
            }
        }
    }

    impl From<wq::NewQualityRule> for dq::NewRule {
        fn from(v: wq::NewQualityRule) -> Self {
            dq::NewRule { kind: v.rule.into(), dimension: opt(v.dimension), blocking: v.blocking, note: v.note }
        }
    }

    impl From<dq::DimensionSetting> for wq::QualityDimensionView {
        fn from(v: dq::DimensionSetting) -> Self {
            wq::QualityDimensionView {
                dimension: v.dimension.into(),
                name: v.name,
                weight: v.weight,
                updated_at: at(v.updated_at_ms),
                updated_by: v.updated_by,
            }
        }
    }

    impl From<dq::Rule> for wq::QualityRuleView {
        fn from(v: dq::Rule) -> Self {
            wq::QualityRuleView {
                id: v.id.map(|i| i.0),
                key: v.key,
                resource_code: v.resource_code,
                origin: v.origin.into(),
                kind_zh: v.kind.label_zh().to_string(),
                rule: v.kind.into(),
                dimension: v.dimension.into(),
                blocking: v.blocking,
                note: v.note,
                created_at: v.created_at_ms.map(at),
                created_by: v.created_by,
                retired_at: v.retired_at_ms.map(at),
                retired_by: v.retired_by,
                retire_reason: v.retire_reason,
            }
        }
    }

    impl From<dq::RuleResult> for wq::QualityRuleResult {
        fn from(v: dq::RuleResult) -> Self {
            wq::QualityRuleResult {
                rule_key: v.rule_key,
                kind: v.kind,
                dimension: v.dimension.into(),
                checked_at: at(v.checked_at_ms),
                rows_checked: v.rows_checked,
                rows_failing: v.rows_failing,
                samples: v.samples,
                score: points(v.score),
                detail: v.detail,
            }
        }
    }

    impl From<dq::DimensionScore> for wq::QualityDimensionScore {
        fn from(v: dq::DimensionScore) -> Self {
            wq::QualityDimensionScore { dimension: v.dimension.into(), score: points(v.score), rules: v.rules }
        }
    }

    impl From<dq::Run> for wq::QualityCheck {
        fn from(v: dq::Run) -> Self {
            wq::QualityCheck {
                id: v.id.0,
                resource_code: v.resource_code,
                department_id: v.department_id,
                cause: v.cause.into(),
                batch_id: v.batch_id,
                started_at: at(v.started_at_ms),
                finished_at: at(v.finished_at_ms),
                rows_checked: v.rows_checked,
                score: points(v.score),
                grade_zh: v.grade.label_zh().to_string(),
                grade: v.grade.into(),
                dimensions: vec(v.dimensions),
                actor: v.actor,
                results: vec(v.results),
            }
        }
    }

    impl From<dq::DatasetScore> for wq::DatasetQualityScore {
        fn from(v: dq::DatasetScore) -> Self {
            wq::DatasetQualityScore {
                resource_code: v.resource_code,
                resource_name: v.resource_name,
                department_id: v.department_id,
                check_id: v.run_id.0,
                checked_at: at(v.checked_at_ms),
                score: points(v.score),
                grade: v.grade.into(),
                dimensions: vec(v.dimensions),
            }
        }
    }

    impl From<dq::DepartmentScore> for wq::DepartmentQualityScore {
        fn from(v: dq::DepartmentScore) -> Self {
            wq::DepartmentQualityScore {
                department_id: v.department_id,
                department_name: v.department_name,
                datasets: v.datasets,
                score: points(v.score),
                grade: v.grade.into(),
                dimensions: vec(v.dimensions),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_rule_goes_through_the_wire_unchanged() {
            for json in [
                serde_json::json!({"kind": "pattern", "item": "邮政编码", "pattern": "[0-9]{6}"}),
                serde_json::json!({"kind": "identifier", "item": "公民身份号码", "scheme": "id_number"}),
                serde_json::json!({"kind": "range", "item": "年龄", "min": "0", "max": null}),
                serde_json::json!({"kind": "id_consistency", "id_item": "公民身份号码", "birth_item": "出生日期", "sex_item": null}),
                serde_json::json!({"kind": "volume_change", "max_change_percent": 20}),
            ] {
                let wire: wq::QualityRuleKind = serde_json::from_value(json.clone()).unwrap();
                let domain: dq::RuleKind = serde_json::from_value(json.clone()).unwrap();
                assert_eq!(dq::RuleKind::from(wire.clone()), domain);
                assert_eq!(serde_json::to_value(wq::QualityRuleKind::from(domain)).unwrap(), json);
            }
        }
    }
}
