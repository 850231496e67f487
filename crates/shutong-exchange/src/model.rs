//! The data plane's domain types.

use serde::{Deserialize, Serialize};

shutong_store::typed_id!(
    /// 批次标识: the ID of a data batch (数据归集的一个批次) in the pool.
    BatchId
);
shutong_store::typed_id!(
    /// 文件标识: the ID of a bound file (文件挂接).
    FileId
);

shutong_catalog::value_list!(
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

shutong_catalog::value_list!(
    /// 更新方式 of a batch.
    IngestMode {
        /// 全量: the batch replaces the whole dataset.
        Full => "full" / "全量",
        /// 增量: upserts and deletions by key.
        Incremental => "incremental" / "增量",
    }
);

shutong_catalog::value_list!(
    /// 数据格式 of an upload or a download.
    DataFormat {
        Csv => "csv" / "CSV",
        Ndjson => "ndjson" / "NDJSON",
        Xlsx => "xlsx" / "Excel",
        Parquet => "parquet" / "Parquet",
    }
);

shutong_catalog::value_list!(
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

/// 挂接: a published resource bound to its data (办法 第十二条).
#[derive(Clone, Debug, Serialize)]
pub struct BindingView {
    pub resource_code: shutong_catalog::ResourceCode,
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
    #[serde(skip)]
    pub table_name: Option<String>,
    /// The key column holds the key's HMAC-SM3 blind index (a sensitive key item stored encrypted).
    pub key_sealed: bool,
}

/// One rejected row of a batch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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
#[derive(Clone, Debug, Serialize)]
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
    /// Parts received of a full batch uploaded in parts (0: sent whole).
    pub parts: i64,
    /// The rejected rows (at most `exchange.max_reported_rejects`; `rows_rejected` counts all).
    pub rejects: Vec<RejectedRow>,
}

/// A record as it leaves the platform: granted items only, masked where the grant requires.
pub type Record = serde_json::Map<String, serde_json::Value>;
