//! The node's identity: the first start's bootstrap (the platform's authority and first administrator) and the node record.

use super::*;

/// What the platform needs on first start.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub node: NodeIdentity,
    /// The department that runs the platform (the sharing authority of the node's level).
    pub authority_name: String,
    pub authority_credit_code: String,
    pub admin_username: String,
    /// The first admin's password; generated (and returned, to print once) if absent.
    pub admin_password: Option<String>,
}

/// The outcome of bootstrapping: the generated admin password, if one was generated.
#[derive(Debug)]
pub struct BootstrapOutcome {
    pub created: bool,
    pub generated_password: Option<String>,
}

/// On first start (no users yet): records the node identity, creates the authority department and the
/// platform administrator. Does nothing on later starts.
pub async fn bootstrap(db: &Db, regions: &RegionTable, settings: &SecuritySettings, b: &Bootstrap) -> IdentityResult<BootstrapOutcome> {
    let ctx = AuditContext::system("system:bootstrap");
    let mut change = Change::begin(db, &ctx).await?;
    let users: i64 = sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&mut **change.tx()).await?.try_get(0)?;
    if users > 0 {
        // Configuration is the source of the node's identity: a changed configuration is recorded (and
        // audited) at the next start.
        let stored =
            sqlx::query("SELECT name, level, zone, region_code FROM node_identity WHERE id = 1").fetch_optional(&mut **change.tx()).await?;
        let same = match &stored {
            Some(r) => {
                r.try_get::<String, _>("name")? == b.node.name.trim()
                    && r.try_get::<String, _>("level")? == b.node.level.as_str()
                    && r.try_get::<String, _>("zone")? == b.node.zone.as_str()
                    && r.try_get::<String, _>("region_code")? == b.node.region_code
            }
            None => false,
        };
        if !same {
            set_node_identity_tx(&mut change, regions, &AuditContext::system("system:config"), &b.node).await?;
            change.notify(Notice::IdentityChanged);
            change.commit().await?;
        }
        return Ok(BootstrapOutcome { created: false, generated_password: None });
    }
    set_node_identity_tx(&mut change, regions, &ctx, &b.node).await?;
    let dept = insert_department(
        &mut change,
        regions,
        NewDepartment {
            name: b.authority_name.clone(),
            credit_code: b.authority_credit_code.clone(),
            region_code: b.node.region_code.clone(),
            level: b.node.level,
            kind: DepartmentKind::SharingAuthority,
            parent_id: None,
        },
    )
    .await?;
    let (password, generated) = match &b.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = format!("St-{}", random_hex(9));
            (p.clone(), Some(p))
        }
    };
    let user = insert_user(
        &mut change,
        settings,
        NewUser {
            username: b.admin_username.clone(),
            display_name: "平台管理员".into(),
            department_id: dept.id,
            password: Some(password),
            is_system: false,
            roles: vec![Role::PlatformAdmin],
        },
    )
    .await?;
    sqlx::query("UPDATE users SET must_change_password = $1 WHERE id = $2")
        .bind(generated.is_some() as i64)
        .bind(user.id.0)
        .execute(&mut **change.tx())
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(BootstrapOutcome { created: true, generated_password: generated })
}

pub async fn node_identity(db: &Db) -> IdentityResult<Option<NodeIdentity>> {
    let row = sqlx::query("SELECT name, level, zone, region_code FROM node_identity WHERE id = 1").fetch_optional(db.pool()).await?;
    Ok(match row {
        None => None,
        Some(r) => Some(NodeIdentity {
            name: r.try_get("name")?,
            level: shutong_store::parse_column(&r, "node_identity", "level", DepartmentLevel::parse)?,
            zone: shutong_store::parse_column(&r, "node_identity", "zone", Zone::parse)?,
            region_code: r.try_get("region_code")?,
        }),
    })
}

async fn set_node_identity_tx(
    change: &mut Change<'_>,
    regions: &RegionTable,
    ctx: &AuditContext,
    node: &NodeIdentity,
) -> IdentityResult<()> {
    let name = trimmed_name("node.name", &node.name, 100)?;
    regions.lookup(&node.region_code).map_err(|e| invalid("node.region_code", e.to_string()))?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO node_identity (id, name, level, zone, region_code, created_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $5) \
         ON CONFLICT (id) DO UPDATE SET name = $1, level = $2, zone = $3, region_code = $4, updated_at = $5",
    )
    .bind(&name)
    .bind(node.level.as_str())
    .bind(node.zone.as_str())
    .bind(&node.region_code)
    .bind(now)
    .execute(&mut **change.tx())
    .await?;
    change
        .record_as(
            ctx,
            NewAuditEvent {
                action: shutong_audit::Action::NodeSetIdentity,
                target_kind: "node",
                target_id: "1".into(),
                department_id: None,
                detail: json!({"name": name, "level": node.level, "zone": node.zone, "region_code": node.region_code}),
            },
        )
        .await?;
    Ok(())
}
