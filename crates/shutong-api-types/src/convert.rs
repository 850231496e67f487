//! Conversions between the domain crates' types and the wire types (feature `domain`, enabled by the
//! server; a client of the API does not need the domain crates). Output views convert from the domain's,
//! and the bodies that carry a domain input (a resource document, a row filter, a binding, a query) convert
//! into it. Every conversion names each field, so that a field added on one side and not the other does not
//! compile.

use shutong_catalog as dc;
use shutong_exchange as dx;
use shutong_reference::MaskKind as DomainMaskKind;
use shutong_sharing as ds;

use crate::{catalog as wc, exchange as wx, sharing as ws};

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
mirror!(ds::Inbox => ws::Inbox { today, unread }; waiting: vec, overdue: vec, notifications: vec);
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
    first_seq, last_seq, started_at_ms, finished_at_ms, submitted_by, failure, replayed };
    mode: into, format: into, status: into, rejects: vec);
mirror!(wx::QuerySpec => dx::QuerySpec { after, limit }; conditions: vec, grant_id: |g: Option<i64>| g.map(ds::GrantId));
mirror!(dx::RecordPage => wx::RecordPage { records, next_after, grant_id, items });
mirror!(dx::Change => wx::Change { seq, op, key, record });
mirror!(dx::ChangePage => wx::ChangePage { next_since, last_seq, reset }; changes: vec);
mirror!(dx::FileView => wx::FileView { id, resource_code, name, media_type, size, sha256, uploaded_at_ms, uploaded_by });
mirror!(wx::ExemptionQuery => dx::ExemptionQuery { subject, items, fetch });
mirror!(dx::ItemAvailability => wx::ItemAvailability { item, available, resource_code, resource_name, grant_id, reason, value });
mirror!(dx::ExemptionAnswer => wx::ExemptionAnswer { subject_kind, still_required }; items: vec);

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
