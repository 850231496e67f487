//! The exchange's JSON shapes (共享交换, 办法 第十二条, 第十五条; SPEC C4): bindings, batches, records,
//! the change feed, files and the 免提交 check.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::sharing::RowCondition;

crate::wire_list!(
    /// 挂接方式: how a published resource is bound to its data (办法 第十二条: 共享平台 … 数据资源的挂接).
    BindingKind {
        /// 数据集: rows pooled on the platform, keyed by one item (库表挂接).
        Dataset => "dataset" / "数据集",
        /// 服务接口: the provider's own HTTP service, proxied by the platform (系统对接).
        Service => "service" / "服务接口",
        /// 文件: files uploaded by the provider (文件挂接).
        Files => "files" / "文件",
    }
);

crate::wire_list!(
    /// 更新方式 of a batch.
    IngestMode {
        /// 全量: the batch replaces the whole dataset.
        Full => "full" / "全量",
        /// 增量: upserts and deletions by key.
        Incremental => "incremental" / "增量",
    }
);

crate::wire_list!(
    /// 数据格式 of an upload or a download.
    DataFormat {
        Csv => "csv" / "CSV",
        Ndjson => "ndjson" / "NDJSON",
        Xlsx => "xlsx" / "Excel",
        Parquet => "parquet" / "Parquet",
    }
);

crate::wire_list!(
    /// 批次状态.
    BatchStatus {
        /// Being loaded; invisible to readers.
        Loading => "loading" / "加载中",
        /// Applied atomically and visible.
        Committed => "committed" / "已提交",
        /// Refused as a whole (all-or-nothing with rejected rows, or a bad header): nothing applied.
        Rejected => "rejected" / "已拒绝",
        /// Interrupted (the upload broke off, or the server stopped): nothing applied.
        Failed => "failed" / "失败",
    }
);

/// A record as it leaves the platform: granted items only, masked where the grant requires.
pub type Record = serde_json::Map<String, serde_json::Value>;

/// 挂接: a published resource bound to its data (办法 第十二条).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BindingView {
    pub resource_code: String,
    pub provider_department_id: i64,
    pub kind: BindingKind,
    /// The key item of a dataset (主键信息项).
    pub key_item: Option<String>,
    /// The dataset's items, in column order.
    pub columns: Vec<String>,
    /// The provider's service base URL (系统对接).
    pub service_url: Option<String>,
    /// The last change sequence number applied.
    pub last_seq: i64,
    /// The first sequence number of the last full replacement: a change-feed reader behind it must resync.
    pub reset_seq: i64,
    /// Live records.
    pub row_count: i64,
    /// When the last batch was committed (数据更新时间).
    pub last_batch_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub created_by: String,
    /// The key column holds the key's HMAC-SM3 blind index (a sensitive key item stored encrypted).
    pub key_sealed: bool,
}

crate::wire_list!(
    /// 数据时效: where a dataset stands against its update cycle.
    Freshness {
        /// Loaded within its cycle.
        Fresh => "fresh" / "按时更新",
        /// Its last load is older than its cycle allows.
        Overdue => "overdue" / "超期未更新",
        /// Bound but never loaded.
        NeverLoaded => "never_loaded" / "尚未归集",
        /// Updated irregularly (不定期): no due date.
        Irregular => "irregular" / "不定期更新",
    }
);

/// 数据集时效: one bound dataset's last load against its catalog entry's 更新周期.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DatasetFreshness {
    pub resource_code: String,
    pub resource_name: String,
    pub provider_department_id: i64,
    pub update_cycle: crate::catalog::UpdateCycle,
    pub rows: i64,
    pub last_batch_at_ms: Option<i64>,
    /// The last China day on which a load keeps the dataset fresh (absent: never loaded, or irregular).
    pub due_on: Option<chrono::NaiveDate>,
    pub freshness: Freshness,
}

/// The datasets the caller may follow, most overdue first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FreshnessList {
    pub datasets: Vec<DatasetFreshness>,
}

/// A dataset's binding and figures (数据集: schema, row count, freshness).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    pub binding: BindingView,
}

/// A binding to create or change.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBinding {
    /// dataset, service or files (数据集 / 服务接口 / 文件).
    pub kind: Option<BindingKind>,
    /// The key item of a dataset; default the resource's first key item (是否主键).
    #[serde(default)]
    pub key_item: Option<String>,
    /// The provider's service base URL, for `service`.
    #[serde(default)]
    pub service_url: Option<String>,
}

/// One rejected row of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RejectedRow {
    /// The row number in the file (1 = the first data row; the header is row 0).
    pub row: i64,
    /// The record's key, when it could be read.
    pub key: Option<String>,
    /// The item (column) at fault, if one is.
    pub field: Option<String>,
    pub reason: String,
}

/// 批次报告: what a batch did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchReport {
    pub id: i64,
    pub resource_code: String,
    /// The client's batch ID: a batch re-sent with the same ID is not applied twice.
    pub batch_id: String,
    pub mode: IngestMode,
    pub format: DataFormat,
    /// The text encoding read (`utf-8` or `gbk`).
    pub encoding: String,
    pub status: BatchStatus,
    pub rows_received: i64,
    pub rows_upserted: i64,
    pub rows_deleted: i64,
    pub rows_rejected: i64,
    /// Live records after the batch.
    pub rows_after: i64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub submitted_by: String,
    pub failure: Option<String>,
    /// True when this answer is the report of an earlier delivery of the same batch ID.
    pub replayed: bool,
    /// Parts received of a full batch uploaded in parts (0: sent whole). While `status` is `loading`, the
    /// next part to send is `parts + 1`.
    #[serde(default)]
    pub parts: i64,
    /// The rejected rows (at most `exchange.max_reported_rejects`; `rows_rejected` counts all).
    pub rejects: Vec<RejectedRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchList {
    pub batches: Vec<BatchReport>,
}

/// A filtered query (联机查询).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// All must hold: `eq`, `in`, `prefix` on granted items.
    #[serde(default)]
    pub conditions: Vec<RowCondition>,
    /// Cursor: the `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// 1–`exchange.max_page` (default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Which grant to use, if several are in force.
    #[serde(default)]
    pub grant_id: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordPage {
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Record>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
    pub grant_id: Option<i64>,
    /// The items delivered, in order.
    pub items: Vec<String>,
}

/// The field of a record under verification (校核中, 办法 第十八条): the items a consumer's objection names
/// (an empty list: the whole record), present while the objection is open; in CSV and Parquet downloads the
/// last column, always there, empty for a record under no objection, else the items joined by `、` (`全部`:
/// the whole record). The record is delivered as usual: the flag never holds up its use.
pub const UNDER_VERIFICATION_FIELD: &str = "_校核中";

/// One change of the feed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub seq: i64,
    /// `upsert` or `delete`.
    pub op: String,
    /// The record's key when the grant delivers the key item in clear. When it masks the key item or does
    /// not deliver it, the record's pseudonym (化名): `~` and 32 hex digits, the same for every change of the
    /// record under this grant, different under another grant, and revealing nothing of the key (HMAC-SM3
    /// with the platform's index key); absent only if the platform keeps no data keys.
    pub key: Option<String>,
    /// The record after the change (absent for a deletion).
    #[schema(value_type = Option<Object>)]
    pub record: Option<Record>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Pass as `since` next time.
    pub next_since: i64,
    /// The dataset's last sequence number.
    pub last_seq: i64,
    /// A full replacement happened after `since`: records absent from this feed no longer exist; discard the
    /// local copy and rebuild it from the changes (or from an export).
    pub reset: bool,
}

/// 挂接文件: one file of a resource bound as files.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    pub id: i64,
    pub resource_code: String,
    /// The file name as uploaded (no directories).
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex: what a consumer checks its download against.
    pub sha256: String,
    pub uploaded_at_ms: i64,
    pub uploaded_by: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileView>,
}

/// 免提交核验: which items of an applicant the platform can provide.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExemptionQuery {
    /// 公民身份号码 or 统一社会信用代码 of the applicant.
    pub subject: String,
    /// The items the service needs, by name (e.g. 姓名, 户籍地址, 单位名称).
    pub items: Vec<String>,
    /// Also fetch the values (each access is checked and audited like a lookup).
    #[serde(default)]
    pub fetch: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ItemAvailability {
    pub item: String,
    /// The platform can provide it: do not ask the applicant for it.
    pub available: bool,
    pub resource_code: Option<String>,
    pub resource_name: Option<String>,
    pub grant_id: Option<i64>,
    /// Why not: `not_pooled` (no dataset keyed by this kind of subject holds the item), `no_grant` (one does,
    /// but no grant in force covers it), `no_record` (fetched, and the subject has no record there).
    pub reason: Option<String>,
    /// The value, when fetched (masked unless the grant allows clear text).
    pub value: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExemptionAnswer {
    /// `person` (公民身份号码) or `legal_entity` (统一社会信用代码).
    pub subject_kind: String,
    pub items: Vec<ItemAvailability>,
    /// Items the applicant still has to provide.
    pub still_required: Vec<String>,
}

// ------------------------------------------------------------------ exchange nodes (前置机)

crate::wire_list!(
    /// 数据流方向: a publication (提供) or a subscription (获取) of an exchange node.
    FlowDirection {
        Publication => "publication" / "提供",
        Subscription => "subscription" / "获取",
    }
);

crate::wire_list!(
    /// 运行状态 of one flow of a node.
    FlowState {
        Running => "running" / "运行中",
        Offline => "offline" / "离线积压",
        Stopped => "stopped" / "已停止",
    }
);

/// One flow of a node, as its heartbeat reports it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowReport {
    /// The flow's name in the node's configuration (1–64 of a–z 0–9 - _ .).
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub name: String,
    pub direction: FlowDirection,
    /// The resource code (资源代码) of the dataset.
    pub resource_code: String,
    pub state: FlowState,
    /// Changes not yet through (publication: read locally, not on the platform; subscription: on the platform, not local).
    #[schema(minimum = 0)]
    pub lag_rows: i64,
    /// Age of the oldest of those changes, seconds.
    #[schema(minimum = 0)]
    pub lag_seconds: i64,
    /// Rows moved since the flow started.
    #[schema(minimum = 0)]
    pub rows_total: i64,
    /// Rows the platform rejected, kept in the node's rejects table.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub rejects: i64,
    pub last_transfer_at_ms: Option<i64>,
    #[schema(max_length = 2000)]
    pub error: Option<String>,
}

/// 前置机心跳: what a node reports, signed with its system account's SM2 key.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The node's name (1–64 of a–z 0–9 - _ .), unique on the platform.
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub name: String,
    #[schema(min_length = 1, max_length = 64)]
    pub version: String,
    pub started_at_ms: i64,
    #[serde(default)]
    #[schema(max_items = 256)]
    pub flows: Vec<FlowReport>,
    #[schema(minimum = 0)]
    pub outbox_batches: i64,
    #[schema(minimum = 0)]
    pub outbox_bytes: i64,
    #[schema(minimum = 0)]
    pub outbox_limit_bytes: i64,
    #[schema(max_length = 2000)]
    pub last_error: Option<String>,
}

/// 前置机: an exchange node as the platform sees it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExchangeNode {
    pub id: i64,
    pub name: String,
    pub department_id: i64,
    pub department_name: String,
    /// The system account the node signs with.
    pub account: String,
    pub version: String,
    pub registered_at_ms: i64,
    pub last_seen_ms: i64,
    /// The last time one of its flows moved data.
    pub last_transfer_at_ms: Option<i64>,
    /// Silent longer than `exchange.node_silence_seconds`.
    pub silent: bool,
    pub last_error: Option<String>,
    /// The last heartbeat's report.
    pub report: Heartbeat,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExchangeNodeList {
    pub nodes: Vec<ExchangeNode>,
}
