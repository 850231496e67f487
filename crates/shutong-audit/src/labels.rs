//! 审计记录的中文名称: the Chinese names of what an audit event refers to (its target's kind) and of the
//! fields of its detail, one table for the portal, the CLI's listings and the reports. The stored codes and
//! keys never change; an unknown one is shown as it is stored.

/// The Chinese name of a target kind (`sharing_request` → 共享申请).
pub fn target_kind_zh(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "audit_chain" => "审计链",
        "calendar_year" => "节假日安排",
        "catalog_change_event" => "目录更新事由",
        "catalog_classification" => "资源分类",
        "catalog_import" => "目录导入",
        "catalog_project" => "信息化项目",
        "catalog_resource" | "resource" => "信息资源",
        "data" => "数据",
        "data_key" => "数据密钥",
        "department" => "部门",
        "filed_project" => "备案项目",
        "info_system" => "信息系统",
        "info_system_import" => "信息系统台账导入",
        "self_inspection_report" => "自查报告",
        "node" => "节点",
        "quality_dimension" => "质量维度",
        "quality_rule" => "质量规则",
        "quality_run" => "质量检查",
        "region" => "行政区划",
        "sharing_grant" => "授权",
        "sharing_request" => "共享申请",
        "token" => "令牌",
        "user" => "用户",
        _ => return None,
    })
}

/// The Chinese label of a field of an event's detail (`purpose` → 用途).
pub fn field_label_zh(key: &str) -> Option<&'static str> {
    Some(match key {
        "active" | "active_key" => "当前密钥",
        "after" => "之后",
        "batch_id" => "批次",
        "before" => "之前",
        "blocking" => "阻断",
        "cause" => "起因",
        "dimension" => "质量维度",
        "failing" => "未通过的规则",
        "grade" => "等级",
        "rows_checked" => "检查记录数",
        "rule" => "规则",
        "rule_key" => "规则标识",
        "rules" => "规则数",
        "score" => "得分",
        "weight" => "权重",
        "assignment_id" => "角色授予编号",
        "basis" => "依据",
        "access" => "访问条件",
        "checkpoints" => "签名检查点",
        "clear" => "明文交付的敏感信息项",
        "elapsed_ms" => "用时（毫秒）",
        "failure" => "不符之处",
        "ok" => "通过",
        "signed_through" => "签名覆盖至",
        "through" => "核验至",
        "unsealed" => "待封存事件",
        "change_events_resolved" => "已处理的更新事由",
        "classification" => "资源分类",
        "clear_text" => "明文",
        "complete" => "完整",
        "conditions" => "条件",
        "consumer" => "使用部门",
        "credit_code" => "统一社会信用代码",
        "daily_quota" => "每日限额",
        "display_name" => "姓名",
        "due_on" => "应办结日期",
        "events" => "事件数",
        "expires_at_ms" => "到期时间",
        "failed_logins" => "连续失败次数",
        "file" => "文件",
        "file_id" => "文件编号",
        "file_sm3" => "文件 SM3",
        "format" => "格式",
        "from" => "起",
        "grant" => "授权",
        "is_system" => "系统账户",
        "items" => "信息项",
        "key" => "查询键",
        "key_item" => "主键信息项",
        "key_sealed" => "主键盲索引",
        "keys" => "密钥",
        "kind" => "类型",
        "late" => "逾期",
        "level" => "层级",
        "message" => "留言",
        "method" => "方式",
        "mode" => "方式",
        "name" => "名称",
        "narrowed" => "缩小范围",
        "note" => "说明",
        "occurred_on" => "发生日期",
        "origin" => "来源",
        "owner" => "办理部门",
        "parent" | "parent_id" => "上级",
        "path" => "路径",
        "previous" => "原值",
        "previous_valid_to" => "原有效期至",
        "project" => "项目",
        "provider" => "提供部门",
        "public_key" => "公钥",
        "purpose" => "用途",
        "reason" => "理由",
        "records" => "记录数",
        "region_code" => "行政区划代码",
        "request" => "共享申请",
        "resource" | "resource_code" => "信息资源",
        "resources" => "信息资源数",
        "role" => "角色",
        "roles" => "角色",
        "row_filter" => "行范围",
        "rows" | "rows_after" => "行数",
        "service_url" => "服务地址",
        "since" => "自",
        "size" => "大小",
        "stage" => "环节",
        "status" => "状态",
        "submitted" => "已提交",
        "to" => "止",
        "today" => "当日",
        "user_id" => "用户编号",
        "username" => "用户名",
        "valid_from" => "有效期自",
        "valid_to" => "有效期至",
        "version" => "版本",
        "zone" => "网络区域",
        "access_methods" => "共享方式",
        "action" => "方式",
        "catalog_project" => "项目目录",
        "closed_because" => "关口未通过的原因",
        "criteria" => "符合的认定情形",
        "decision" => "认定",
        "document" => "文件",
        "entered_on" => "日期",
        "gate" => "审核关口",
        "into" => "整合至",
        "merger_flag" => "处室整合提示",
        "overrules" => "与部门意见不一致",
        "progress" => "进展",
        "created" => "新增",
        "updated" => "更新",
        "unchanged" => "未变",
        "row" => "行号",
        "year" => "年度",
        "cleanup" => "整合清理清单条数",
        "connect" => "接入清单条数",
        "needs" => "需求清单条数",
        "response" => "部门意见",
        "retired" => "已下线",
        "systems" => "信息系统",
        _ => return None,
    })
}

/// The detail of an event as labelled fields, in the order its map keeps them: each top-level key with its Chinese
/// label (or the key itself), each value as text (strings as they are, lists joined with 、, other values
/// as compact JSON). A detail that is not an object is one field, 详情.
pub fn detail_fields(detail: &serde_json::Value) -> Vec<(String, String)> {
    fn text(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "—".into(),
            serde_json::Value::Bool(b) => if *b { "是" } else { "否" }.into(),
            serde_json::Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                a.iter().map(text).collect::<Vec<_>>().join("、")
            }
            other => other.to_string(),
        }
    }
    match detail {
        serde_json::Value::Object(m) => {
            m.iter().map(|(k, v)| (field_label_zh(k).map_or_else(|| k.clone(), str::to_string), text(v))).collect()
        }
        serde_json::Value::Null => Vec::new(),
        other => vec![("详情".into(), text(other))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_labelled_fields() {
        let d = serde_json::json!({"purpose": "data_verification", "items": ["公民身份号码", "姓名"], "records": 3, "odd": {"a": 1}, "late": false});
        let f = detail_fields(&d);
        assert!(f.contains(&("用途".into(), "data_verification".into())));
        assert!(f.contains(&("信息项".into(), "公民身份号码、姓名".into())));
        assert!(f.contains(&("记录数".into(), "3".into())));
        assert!(f.contains(&("逾期".into(), "否".into())));
        assert!(f.contains(&("odd".into(), "{\"a\":1}".into())), "an unknown key is shown as stored");
        assert_eq!(target_kind_zh("sharing_request"), Some("共享申请"));
        assert_eq!(target_kind_zh("no_such_kind"), None);
    }
}
