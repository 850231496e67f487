#![doc = include_str!("../README.md")]

use std::sync::Arc;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shutong_api_types::catalog::{
    CatalogStats, ChangeEvent, Classification, CreateChangeEventRequest, CreateClassificationRequest, CreateProjectRequest,
    CreateResourceRequest, Project, ResourceDocument, ResourceList, ResourceView, ReviewRequest, SearchResults, VersionSummary,
    WithdrawRequest,
};
use shutong_api_types::exchange::{
    BatchList, BatchReport, BindingView, ChangePage, DataFormat, DatasetView, ExemptionAnswer, ExemptionQuery, IngestMode, NewBinding,
    QuerySpec, Record, RecordPage,
};
use shutong_api_types::sharing::{
    ApproveBody, CreateRequestBody, GrantList, GrantView, Inbox, MessageBody, ReasonBody, RenewBody, RequestDetail, RequestList,
    SharingStats, SweepReport,
};
use shutong_api_types::{AuditEventList, ErrorBody, ErrorEnvelope, LoginRequest, LoginResponse, MeResponse};
use shutong_crypto::NodeKey;
use shutong_crypto::request_signing;

pub use shutong_api_types as types;

/// Why a call did not return its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The platform refused the request: its status and error envelope.
    #[error("{status}: {} ({})", .error.message, .error.code)]
    Api { status: StatusCode, error: Box<ErrorBody> },
    /// The platform could not be reached, or the connection broke.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not the expected JSON.
    #[error("{path}: the answer is not the expected JSON: {reason}")]
    Decode { path: String, reason: String },
    /// The base URL or a path could not be built.
    #[error("address: {0}")]
    Address(String),
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error envelope's code of a refusal (`validation_failed`, `not_found`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }

    /// The field at fault of a refusal, if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => error.field.as_deref(),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// The narrowing of a read of the audit trail (`GET /api/v1/audit/events`); unset fields do not narrow.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// An action's code, e.g. `data.export`.
    pub action: Option<String>,
    /// The actor's username.
    pub actor: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// Only events older than this sequence number (the previous page's `next_before`).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Signed { account: String, key: Arc<NodeKey> },
}

/// A client of one platform, as one caller. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::None => "none".to_string(),
            Auth::Bearer(_) => "bearer".to_string(),
            Auth::Signed { account, .. } => format!("signed as {account}"),
        };
        f.debug_struct("Client").field("base", &self.base.as_str()).field("auth", &auth).finish()
    }
}

/// A resource code's two path segments (`101001/000042` → `101001`, `000042`).
fn code_segments(code: &str) -> ClientResult<[&str; 2]> {
    code.split_once('/').map(|(c, s)| [c, s]).ok_or_else(|| ClientError::Address(format!("'{code}' is not a resource code")))
}

/// An optional query parameter.
fn param(name: &'static str, value: Option<impl ToString>) -> Option<(&'static str, String)> {
    value.map(|v| (name, v.to_string()))
}

impl Client {
    /// A client of the platform at `base` (e.g. `http://127.0.0.1:8080`), not yet authenticated.
    pub fn new(base: &str) -> ClientResult<Client> {
        let base = Url::parse(base).map_err(|e| ClientError::Address(format!("{base}: {e}")))?;
        let http = reqwest::Client::builder().build()?;
        Ok(Client { http, base, auth: Auth::None })
    }

    /// A client of the platform at `base` whose every request gives up after `timeout`.
    pub fn with_timeout(base: &str, timeout: std::time::Duration) -> ClientResult<Client> {
        let base = Url::parse(base).map_err(|e| ClientError::Address(format!("{base}: {e}")))?;
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(std::time::Duration::from_secs(5)).build()?;
        Ok(Client { http, base, auth: Auth::None })
    }

    /// The same platform, with a bearer token (a session's, or a system API token's secret).
    pub fn with_token(&self, token: &str) -> Client {
        Client { auth: Auth::Bearer(token.to_string()), ..self.clone() }
    }

    /// The same platform, as a system account that signs each request with its SM2 key (签名请求).
    pub fn with_signing_key(&self, account: &str, key: NodeKey) -> Client {
        Client { auth: Auth::Signed { account: account.to_string(), key: Arc::new(key) }, ..self.clone() }
    }

    /// The bearer token, if this client has one.
    pub fn token(&self) -> Option<&str> {
        match &self.auth {
            Auth::Bearer(t) => Some(t),
            _ => None,
        }
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> ClientResult<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|_| ClientError::Address(format!("{} cannot be a base", self.base)))?;
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends a request and returns the raw answer, refusals turned into [`ClientError::Api`].
    pub async fn send(&self, method: Method, url: Url, content_type: Option<&str>, body: Vec<u8>) -> ClientResult<reqwest::Response> {
        let digest = hex::encode(shutong_crypto::sm3(&body));
        self.send_body(method, url, content_type, &digest, body.into()).await
    }

    /// Sends a request whose body's SM3 (hex) is known (a file streamed from disk), refusals turned into
    /// [`ClientError::Api`].
    pub async fn send_body(
        &self,
        method: Method,
        url: Url,
        content_type: Option<&str>,
        content_sm3: &str,
        body: reqwest::Body,
    ) -> ClientResult<reqwest::Response> {
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.bearer_auth(t),
            Auth::Signed { account, key } => {
                let path_and_query = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
                let nonce = request_signing::new_nonce();
                for (name, value) in request_signing::sign_digest(key, account, method.as_str(), &path_and_query, content_sm3, now, &nonce)
                {
                    req = req.header(name, value);
                }
            }
        }
        let answer = req.body(body).send().await?;
        let status = answer.status();
        if status.is_success() {
            return Ok(answer);
        }
        let bytes = answer.bytes().await?;
        let error = serde_json::from_slice::<ErrorEnvelope>(&bytes).map(|e| e.error).unwrap_or_else(|_| ErrorBody {
            code: status.as_u16().to_string(),
            message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            field: None,
            request_id: None,
            violations: None,
        });
        Err(ClientError::Api { status, error: Box::new(error) })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> ClientResult<T> {
        let url = self.url(segments, query)?;
        let path = url.path().to_string();
        let (ct, bytes) = match body {
            Some(b) => (
                Some("application/json"),
                serde_json::to_vec(b).map_err(|e| ClientError::Decode { path: path.clone(), reason: e.to_string() })?,
            ),
            None => (None, Vec::new()),
        };
        let answer = self.send(method, url, ct, bytes).await?;
        let bytes = answer.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { path, reason: e.to_string() })
    }

    /// GET a JSON answer from any API path (segments are percent-encoded).
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, String)]) -> ClientResult<T> {
        self.json(Method::GET, segments, query, None::<&()>).await
    }

    /// POST a JSON body to any API path.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> ClientResult<T> {
        self.json(Method::POST, segments, &[], Some(body)).await
    }

    /// PUT a JSON body to any API path.
    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, segments: &[&str], body: &B) -> ClientResult<T> {
        self.json(Method::PUT, segments, &[], Some(body)).await
    }

    // -------------------------------------------------------------- identity

    /// Logs in and returns a client carrying the session's token.
    pub async fn login(&self, username: &str, password: &str) -> ClientResult<Client> {
        let answer = self.login_answer(username, password).await?;
        Ok(self.with_token(&answer.token))
    }

    /// Logs in and returns the whole answer (token, expiry, the caller).
    pub async fn login_answer(&self, username: &str, password: &str) -> ClientResult<LoginResponse> {
        let body = LoginRequest { username: username.to_string(), password: password.to_string() };
        self.json(Method::POST, &["api", "v1", "auth", "login"], &[], Some(&body)).await
    }

    /// The caller: user, department, roles.
    pub async fn me(&self) -> ClientResult<MeResponse> {
        self.get(&["api", "v1", "me"], &[]).await
    }

    // -------------------------------------------------------------- audit

    /// 审计日志: the trail's events the caller may read, newest first, narrowed by `filter`.
    pub async fn audit_events(&self, filter: &AuditFilter) -> ClientResult<AuditEventList> {
        let q: Vec<_> = [
            param("action", filter.action.as_deref()),
            param("actor", filter.actor.as_deref()),
            param("target_kind", filter.target_kind.as_deref()),
            param("target_id", filter.target_id.as_deref()),
            param("before", filter.before),
            param("limit", filter.limit),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.get(&["api", "v1", "audit", "events"], &q).await
    }

    // -------------------------------------------------------------- catalog

    pub async fn create_resource(&self, req: &CreateResourceRequest) -> ClientResult<ResourceView> {
        self.post(&["api", "v1", "catalog", "resources"], req).await
    }

    pub async fn get_resource(&self, code: &str) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "catalog", "resources", c, s], &[]).await
    }

    /// One version of a resource (older ones stay readable).
    pub async fn get_resource_version(&self, code: &str, version: i64) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "catalog", "resources", c, s], &[("version", version.to_string())]).await
    }

    /// The version history, newest first.
    pub async fn list_versions(&self, code: &str) -> ClientResult<Vec<VersionSummary>> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "catalog", "resources", c, s, "versions"], &[]).await
    }

    /// Every state change of a resource, from the audit trail.
    pub async fn resource_history(&self, code: &str) -> ClientResult<AuditEventList> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "catalog", "resources", c, s, "history"], &[]).await
    }

    /// Opens a new version of a published resource as a draft.
    pub async fn revise_resource(&self, code: &str) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.json(Method::POST, &["api", "v1", "catalog", "resources", c, s, "revise"], &[], None::<&()>).await
    }

    pub async fn update_resource(&self, code: &str, doc: &ResourceDocument) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.json(Method::PUT, &["api", "v1", "catalog", "resources", c, s], &[], Some(doc)).await
    }

    pub async fn list_resources(&self, status: Option<&str>, limit: Option<i64>) -> ClientResult<ResourceList> {
        let q: Vec<_> = [param("status", status), param("limit", limit)].into_iter().flatten().collect();
        self.get(&["api", "v1", "catalog", "resources"], &q).await
    }

    /// Submits the draft for review (R-CAT-5).
    pub async fn submit_resource(&self, code: &str) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.json(Method::POST, &["api", "v1", "catalog", "resources", c, s, "submit"], &[], None::<&()>).await
    }

    /// The authority approves (publishes) or returns a submission.
    pub async fn review_resource(&self, code: &str, review: &ReviewRequest) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.post(&["api", "v1", "catalog", "resources", c, s, "review"], review).await
    }

    pub async fn withdraw_resource(&self, code: &str, reason: &str) -> ClientResult<ResourceView> {
        let [c, s] = code_segments(code)?;
        self.post(&["api", "v1", "catalog", "resources", c, s, "withdraw"], &WithdrawRequest { reason: reason.to_string() }).await
    }

    /// Searches the published catalog.
    pub async fn search(&self, text: &str, limit: usize) -> ClientResult<SearchResults> {
        self.get(&["api", "v1", "catalog", "search"], &[("q", text.to_string()), ("limit", limit.to_string())]).await
    }

    /// Registers an information project whose catalog is compiled ahead (R-CAT-8).
    pub async fn create_project(&self, req: &CreateProjectRequest) -> ClientResult<Project> {
        self.post(&["api", "v1", "catalog", "projects"], req).await
    }

    /// Accepts a project: its catalog is merged, all entries or none.
    pub async fn accept_project(&self, id: i64) -> ClientResult<Project> {
        self.json(Method::POST, &["api", "v1", "catalog", "projects", &id.to_string(), "accept"], &[], None::<&()>).await
    }

    pub async fn catalog_stats(&self) -> ClientResult<CatalogStats> {
        self.get(&["api", "v1", "catalog", "stats"], &[]).await
    }

    /// 信息资源分类: the classification tree, every node.
    pub async fn classifications(&self) -> ClientResult<Vec<Classification>> {
        self.get(&["api", "v1", "catalog", "classifications"], &[]).await
    }

    /// Adds a node to the classification tree (the sharing authority).
    pub async fn create_classification(&self, code: &str, name: &str) -> ClientResult<Classification> {
        let body = CreateClassificationRequest { code: code.to_string(), name: name.to_string() };
        self.post(&["api", "v1", "catalog", "classifications"], &body).await
    }

    /// 目录更新事件 (R-CAT-7): records a change that obliges a department to update its catalog.
    pub async fn record_change_event(&self, event: &CreateChangeEventRequest) -> ClientResult<ChangeEvent> {
        self.post(&["api", "v1", "catalog", "change-events"], event).await
    }

    /// Change events, of one department or all; with `overdue`, only the open ones past their deadline.
    pub async fn change_events(&self, department_id: Option<i64>, overdue: bool) -> ClientResult<Vec<ChangeEvent>> {
        let q: Vec<_> =
            [param("department_id", department_id), overdue.then(|| ("overdue", "true".to_string()))].into_iter().flatten().collect();
        self.get(&["api", "v1", "catalog", "change-events"], &q).await
    }

    // -------------------------------------------------------------- sharing

    /// 直接获取 (无条件共享): the grant is created at once.
    pub async fn subscribe(&self, req: &CreateRequestBody) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "subscriptions"], req).await
    }

    /// 共享申请 (有条件共享), answered within 10 working days.
    pub async fn create_request(&self, req: &CreateRequestBody) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "requests"], req).await
    }

    pub async fn get_request(&self, id: i64) -> ClientResult<RequestDetail> {
        self.get(&["api", "v1", "requests", &id.to_string()], &[]).await
    }

    /// The caller's requests on one side (`consumer`, `provider`, `owner`).
    pub async fn list_requests(&self, side: Option<&str>) -> ClientResult<RequestList> {
        let q: Vec<_> = [param("side", side)].into_iter().flatten().collect();
        self.get(&["api", "v1", "requests"], &q).await
    }

    pub async fn approve(&self, id: i64, body: &ApproveBody) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "requests", &id.to_string(), "approve"], body).await
    }

    pub async fn reject(&self, id: i64, reason: &str) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "requests", &id.to_string(), "reject"], &ReasonBody { reason: reason.to_string() }).await
    }

    pub async fn escalate(&self, id: i64, reason: &str) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "requests", &id.to_string(), "escalate"], &ReasonBody { reason: reason.to_string() }).await
    }

    pub async fn add_message(&self, id: i64, body: &str) -> ClientResult<RequestDetail> {
        self.post(&["api", "v1", "requests", &id.to_string(), "messages"], &MessageBody { body: body.to_string() }).await
    }

    pub async fn list_grants(&self, side: Option<&str>) -> ClientResult<GrantList> {
        let q: Vec<_> = [param("side", side)].into_iter().flatten().collect();
        self.get(&["api", "v1", "grants"], &q).await
    }

    pub async fn get_grant(&self, id: i64) -> ClientResult<GrantView> {
        self.get(&["api", "v1", "grants", &id.to_string()], &[]).await
    }

    pub async fn revoke_grant(&self, id: i64, reason: &str) -> ClientResult<GrantView> {
        self.post(&["api", "v1", "grants", &id.to_string(), "revoke"], &ReasonBody { reason: reason.to_string() }).await
    }

    pub async fn renew_grant(&self, id: i64, body: &RenewBody) -> ClientResult<GrantView> {
        self.post(&["api", "v1", "grants", &id.to_string(), "renew"], body).await
    }

    /// Per-provider figures (the authority and auditors see every provider).
    pub async fn sharing_stats(&self) -> ClientResult<SharingStats> {
        self.get(&["api", "v1", "requests", "stats"], &[]).await
    }

    /// Runs the deadline sweep now (platform administrators).
    pub async fn sweep(&self) -> ClientResult<SweepReport> {
        self.json(Method::POST, &["api", "v1", "sharing", "sweep"], &[], None::<&()>).await
    }

    /// The requests past their stage's due date the caller may see (the authority's list).
    pub async fn overdue_requests(&self) -> ClientResult<RequestList> {
        self.get(&["api", "v1", "requests"], &[("overdue", "true".into())]).await
    }

    /// 待办: what waits for the caller's department, and its notices.
    pub async fn inbox(&self) -> ClientResult<Inbox> {
        self.get(&["api", "v1", "inbox"], &[]).await
    }

    // -------------------------------------------------------------- exchange

    /// 挂接: binds a published resource to its data.
    pub async fn bind(&self, code: &str, binding: &NewBinding) -> ClientResult<BindingView> {
        let [c, s] = code_segments(code)?;
        self.json(Method::PUT, &["api", "v1", "data", c, s, "binding"], &[], Some(binding)).await
    }

    pub async fn dataset(&self, code: &str) -> ClientResult<DatasetView> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "data", c, s], &[]).await
    }

    /// 数据归集: sends a batch (the file's bytes) with its own batch ID, so that a re-sent batch is applied once.
    pub async fn post_batch(
        &self,
        code: &str,
        mode: IngestMode,
        format: DataFormat,
        batch_id: &str,
        body: impl Into<Vec<u8>>,
    ) -> ClientResult<BatchReport> {
        let query = vec![("mode", mode.as_str().to_string()), ("format", format.as_str().to_string()), ("batch_id", batch_id.to_string())];
        self.send_batch(code, &query, body.into()).await
    }

    /// `POST …/batches` with `query` and an in-memory body.
    async fn send_batch(&self, code: &str, query: &[(&str, String)], body: Vec<u8>) -> ClientResult<BatchReport> {
        let [c, s] = code_segments(code)?;
        let url = self.url(&["api", "v1", "data", c, s, "batches"], query)?;
        let path = url.path().to_string();
        let answer = self.send(Method::POST, url, Some("application/octet-stream"), body).await?;
        let bytes = answer.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { path, reason: e.to_string() })
    }

    /// 分片上传: one part of a full batch uploaded in parts (`part` 1, 2, … under one batch ID; `last` commits
    /// the batch). A part the platform has already is answered with the batch's report.
    pub async fn post_batch_part(
        &self,
        code: &str,
        format: DataFormat,
        batch_id: &str,
        part: i64,
        last: bool,
        body: impl Into<Vec<u8>>,
    ) -> ClientResult<BatchReport> {
        let mut query = vec![
            ("mode", "full".to_string()),
            ("format", format.as_str().to_string()),
            ("batch_id", batch_id.to_string()),
            ("part", part.to_string()),
        ];
        if last {
            query.push(("last", "true".to_string()));
        }
        self.send_batch(code, &query, body.into()).await
    }

    /// 数据归集 of a file on disk, streamed (never held whole in memory): CSV (with its `encoding`), NDJSON or
    /// XLSX, under its own batch ID.
    pub async fn post_batch_file(
        &self,
        code: &str,
        mode: IngestMode,
        format: DataFormat,
        batch_id: &str,
        encoding: Option<&str>,
        path: &std::path::Path,
    ) -> ClientResult<BatchReport> {
        let [c, s] = code_segments(code)?;
        let mut query =
            vec![("mode", mode.as_str().to_string()), ("format", format.as_str().to_string()), ("batch_id", batch_id.to_string())];
        if let Some(e) = encoding {
            query.push(("encoding", e.to_string()));
        }
        let url = self.url(&["api", "v1", "data", c, s, "batches"], &query)?;
        let io = |e: std::io::Error| ClientError::Address(format!("{}: {e}", path.display()));
        let digest = file_sm3(path).await.map_err(io)?;
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        let stream = futures_util::stream::try_unfold(file, |mut f| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 256 << 10];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((bytes::Bytes::from(buf), f)))
        });
        let path_s = url.path().to_string();
        let mut body = reqwest::Body::wrap_stream(stream);
        if len == 0 {
            body = reqwest::Body::from(Vec::new());
        }
        let answer = self.send_body(Method::POST, url, Some("application/octet-stream"), &digest, body).await?;
        let bytes = answer.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { path: path_s, reason: e.to_string() })
    }

    pub async fn list_batches(&self, code: &str) -> ClientResult<BatchList> {
        let [c, s] = code_segments(code)?;
        self.get(&["api", "v1", "data", c, s, "batches"], &[]).await
    }

    /// 联机查询: one record by its key.
    pub async fn lookup(&self, code: &str, key: &str, grant_id: Option<i64>) -> ClientResult<Record> {
        let [c, s] = code_segments(code)?;
        let q: Vec<_> = [param("grant_id", grant_id)].into_iter().flatten().collect();
        self.get(&["api", "v1", "data", c, s, "records", key], &q).await
    }

    /// 联机查询: records matching conditions, a page at a time.
    pub async fn query(&self, code: &str, spec: &QuerySpec) -> ClientResult<RecordPage> {
        let [c, s] = code_segments(code)?;
        self.post(&["api", "v1", "data", c, s, "query"], spec).await
    }

    /// 订阅: the changes after `since`.
    pub async fn changes(&self, code: &str, since: i64, limit: Option<i64>) -> ClientResult<ChangePage> {
        let [c, s] = code_segments(code)?;
        let q: Vec<_> = [param("since", Some(since)), param("limit", limit)].into_iter().flatten().collect();
        self.get(&["api", "v1", "data", c, s, "changes"], &q).await
    }

    /// 批量下载: the dataset within the grant, as the bytes of a CSV, NDJSON or Parquet file.
    pub async fn export(&self, code: &str, format: DataFormat) -> ClientResult<bytes::Bytes> {
        let [c, s] = code_segments(code)?;
        let url = self.url(&["api", "v1", "data", c, s, "export"], &[("format", format.as_str().to_string())])?;
        Ok(self.send(Method::GET, url, None, Vec::new()).await?.bytes().await?)
    }

    /// 免提交核验 (R-EX-6): which of an applicant's items the platform can provide under the caller's grants,
    /// and with `fetch` their values.
    pub async fn exemption_check(&self, query: &ExemptionQuery) -> ClientResult<ExemptionAnswer> {
        self.post(&["api", "v1", "exemptions", "check"], query).await
    }
}

/// The SM3 of a file (hex), read in chunks.
pub async fn file_sm3(path: &std::path::Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = shutong_crypto::Sm3Hasher::default();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_segment_by_segment() {
        let c = Client::new("http://127.0.0.1:1/").unwrap();
        let url = c.url(&["api", "v1", "data", "101", "000001", "records", "张三/1"], &[("grant_id", "7".into())]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:1/api/v1/data/101/000001/records/%E5%BC%A0%E4%B8%89%2F1?grant_id=7");
        assert!(code_segments("101").is_err());
        assert_eq!(code_segments("101001/000042").unwrap(), ["101001", "000042"]);
    }
}
