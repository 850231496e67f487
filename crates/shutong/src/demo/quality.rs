//! The demo's data quality (数据质量): the population's provider adds its own rules, and both pooled datasets
//! are checked once, so that `serve --demo` shows rules, results and scores. Seeded once.

use shutong_quality::{self as quality, CheckCause, NewRule, RuleKind};

/// Adds the rules of 示范省公安厅 to 人口基本信息 and checks the demo's two datasets.
pub async fn seed_quality(ex: &shutong_exchange::Exchange, regions: &shutong_reference::RegionTable) -> anyhow::Result<()> {
    let db = &ex.db;
    let code = |name: &'static str| super::demo_code(db, name);
    let user = |name: &'static str| super::demo_user(db, name);
    let population = code("人口基本信息").await?;
    let (ga, ga_ctx) = user("ga.editor").await?;
    if !quality::runs(ex, &ga, &population, None, 1).await?.is_empty() {
        return Ok(());
    }
    for kind in [
        RuleKind::CodeList { item: "性别".into(), values: vec!["男".into(), "女".into()] },
        RuleKind::Pattern { item: "姓名".into(), pattern: "\\p{Han}{2,4}".into() },
        RuleKind::IdConsistency {
            id_item: "公民身份号码".into(), birth_item: Some("出生日期".into()), sex_item: Some("性别".into())
        },
        RuleKind::VolumeChange { max_change_percent: 20 },
    ] {
        quality::add_rule(ex, &ga, &ga_ctx, &population, NewRule { kind, dimension: None, blocking: false, note: None }).await?;
    }
    quality::check(ex, &ga, &ga_ctx, regions, &population, CheckCause::Manual, None).await?;
    let entities = code("法人单位基本信息").await?;
    let (sj, sj_ctx) = user("sj.editor").await?;
    quality::check(ex, &sj, &sj_ctx, regions, &entities, CheckCause::Manual, None).await?;
    Ok(())
}
