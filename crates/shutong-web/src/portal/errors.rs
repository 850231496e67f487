//! 出错提示: how the portal shows a service's refusal. Every error becomes one message in Chinese (the
//! services' messages go through the portal's catalogue, `zh`), and a field-level error also names its
//! field, so that the page shows the message beside that field (`static/portal.js` moves it there and
//! marks the field; without scripts it stays at the top of the page). The redirect keeps the message and
//! the field in the URL (post, redirect, get): reloading shows it once more, nothing else.

use axum::response::{IntoResponse, Redirect, Response};
use shutong_catalog::CatalogError;
use shutong_exchange::ExchangeError;
use shutong_identity::IdentityError;
use shutong_sharing::SharingError;
use shutong_store::StoreError;

use super::zh;

/// A refusal as the portal shows it.
pub struct Shown {
    /// The form field at fault, as the service names it.
    pub field: Option<String>,
    pub text: String,
}

impl Shown {
    pub fn new(text: impl Into<String>) -> Shown {
        Shown { field: None, text: text.into() }
    }

    fn field(field: &str, message: &str) -> Shown {
        Shown { field: Some(field.to_string()), text: zh::error_text(Some(field), message) }
    }
}

fn store(e: &StoreError) -> Shown {
    match e {
        StoreError::Unavailable(_) => Shown::new("数据库暂时不可用，请稍后再试。"),
        other => {
            tracing::error!(error = %other, request_id = crate::error::current_request_id().unwrap_or_default(), "portal action failed");
            Shown::new("内部错误，请稍后再试；如仍出现，请联系平台运维人员。")
        }
    }
}

fn refused(message: &str) -> Shown {
    Shown::new(format!("无权操作：{}", zh::error_text(None, message)))
}

pub fn identity(e: &IdentityError) -> Shown {
    match e {
        IdentityError::Validation { field, message } | IdentityError::Conflict { field, message } => Shown::field(field, message),
        IdentityError::NotFound { what } => Shown::new(zh::not_found(what)),
        IdentityError::Forbidden(m) => refused(m),
        IdentityError::InvalidCredentials => Shown::new("用户名或密码错误。"),
        IdentityError::Locked { .. } => Shown::new("登录失败次数过多，账户已暂时锁定，请稍后再试。"),
        IdentityError::Store(s) => store(s),
    }
}

pub fn catalog(e: &CatalogError) -> Shown {
    match e {
        CatalogError::Validation { field, message } => Shown::field(field, message),
        CatalogError::Rules(v) => Shown {
            field: v.first().map(|x| x.field.clone()),
            text: format!(
                "未通过目录规则校验：{}",
                v.iter().map(|x| zh::violation(x.rule, &x.field, &x.message)).collect::<Vec<_>>().join("；")
            ),
        },
        CatalogError::NotFound { what } => Shown::new(zh::not_found(what)),
        CatalogError::Forbidden(m) => refused(m),
        CatalogError::State(m) => Shown::new(zh::error_text(None, m)),
        CatalogError::Store(s) => store(s),
    }
}

pub fn sharing(e: &SharingError) -> Shown {
    match e {
        SharingError::Validation { field, message } => Shown::field(field, message),
        SharingError::NotFound { what } => Shown::new(zh::not_found(what)),
        SharingError::Forbidden(m) => refused(m),
        SharingError::State(m) | SharingError::Conflict(m) => Shown::new(zh::error_text(None, m)),
        SharingError::Store(s) => store(s),
    }
}

pub fn exchange(e: &ExchangeError) -> Shown {
    match e {
        ExchangeError::Validation { field, message } => Shown::field(field, message),
        ExchangeError::NotFound { what } => Shown::new(zh::not_found(what)),
        ExchangeError::Forbidden(m) => refused(m),
        ExchangeError::NoGrant(_) => Shown::new("您的部门没有该资源在有效期内、含此共享方式的授权：请先在资源页申请或订阅。"),
        ExchangeError::Store(s) => store(s),
        ExchangeError::Sealed(_) => Shown::new("敏感数据无法解密：数据密钥缺失或数据已被改动，请联系平台运维人员。"),
        ExchangeError::BatchRejected { message, .. } => Shown::new(zh::error_text(None, message)),
        ExchangeError::Conflict(m)
        | ExchangeError::PartsLost(m)
        | ExchangeError::Limited(m)
        | ExchangeError::TooLarge(m)
        | ExchangeError::Upstream(m) => Shown::new(zh::error_text(None, m)),
    }
}

pub fn systems(e: &shutong_systems::SystemsError) -> Shown {
    use shutong_systems::SystemsError as Y;
    match e {
        Y::Validation { field, message } | Y::Duplicate { field, message } => Shown::field(field, message),
        Y::Invalid(problems) => Shown {
            field: problems.first().map(|p| p.field.clone()),
            text: problems.iter().map(|p| zh::error_text(Some(&p.field), &p.message)).collect::<Vec<_>>().join("；"),
        },
        Y::NotFound { what } => Shown::new(zh::not_found(what)),
        Y::Forbidden(m) => refused(m),
        Y::State(m) => Shown::new(zh::error_text(None, m)),
        Y::GateClosed { gate, reasons } => Shown::new(format!("{}关口未通过：{}", gate.label_zh(), reasons.join("；"))),
        Y::ImportRejected(issues) => Shown::new(format!(
            "未导入任何内容，共 {} 个问题：{}",
            issues.len(),
            issues
                .iter()
                .take(20)
                .map(|i| format!("{} 第 {} 行「{}」{}", i.sheet, i.row, i.column, zh::error_text(None, &i.reason)))
                .collect::<Vec<_>>()
                .join("；")
        )),
        Y::Document(shutong_documents::DocumentError::NoCjkFont { .. }) => {
            Shown::new("本机没有中文字体，无法生成 PDF：请安装 fonts-wqy-zenhei 或 fonts-noto-cjk。")
        }
        Y::Document(_) => Shown::new("文档生成失败，请联系平台运维人员。"),
        Y::Store(s) => store(s),
    }
}

/// Back to `to` (which may carry a query already), showing `shown` once.
pub fn quality(e: &shutong_quality::QualityError) -> Shown {
    use shutong_quality::QualityError as Q;
    match e {
        Q::Validation { field, message } => Shown::field(field, message),
        Q::NotFound { what } => Shown::new(zh::not_found(what)),
        Q::Forbidden(m) => refused(m),
        Q::State(m) | Q::TooLarge(m) => Shown::new(zh::error_text(None, m)),
        Q::Exchange(x) => exchange(x),
        Q::Store(s) => store(s),
    }
}

pub fn back(to: &str, shown: Shown) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let mut pairs = vec![("error", shown.text)];
    pairs.extend(shown.field.map(|f| ("field", f)));
    Redirect::to(&format!("{to}{sep}{}", serde_urlencoded::to_string(pairs).unwrap_or_default())).into_response()
}
