//! The demo's data: the departments of 示范省 and its catalog, as tables.

use shutong_identity::{DepartmentKind, DepartmentLevel};
use shutong_reference::{CreditCode, OrgCode};

use super::AUTHORITY_NAME;

/// A valid 统一社会信用代码 for a demo department: 机构编制/机关, the region, a made-up organisation code.
pub fn demo_credit_code(region: &str, serial: u32) -> String {
    let body = format!("MB{serial:06}");
    let org = format!("{body}{}", OrgCode::check_character(body.as_bytes()).unwrap_or('0'));
    let first17 = format!("11{region}{org}");
    format!("{first17}{}", CreditCode::check_character(first17.as_bytes()).unwrap_or('0'))
}

pub(super) struct DemoDepartment {
    pub(super) name: &'static str,
    pub(super) region: &'static str,
    pub(super) level: DepartmentLevel,
    pub(super) kind: DepartmentKind,
    pub(super) parent: Option<&'static str>,
}

pub(super) const fn d(
    name: &'static str,
    region: &'static str,
    level: DepartmentLevel,
    kind: DepartmentKind,
    parent: Option<&'static str>,
) -> DemoDepartment {
    DemoDepartment { name, region, level, kind, parent }
}

use DepartmentKind::{AuditOffice, DevelopmentReform, Finance, Government, SharingAuthority};
use DepartmentLevel::{City, Province};

pub(super) const DEPARTMENTS: &[DemoDepartment] = &[
    d("示范省公安厅", "320000", Province, Government, None),
    d("示范省人力资源和社会保障厅", "320000", Province, Government, None),
    d("示范省市场监督管理局", "320000", Province, Government, None),
    d("示范省卫生健康委员会", "320000", Province, Government, None),
    d("示范省民政厅", "320000", Province, Government, None),
    d("示范省自然资源厅", "320000", Province, Government, None),
    d("示范省审计厅", "320000", Province, AuditOffice, None),
    d("东川市大数据管理局", "320100", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("东川市公安局", "320100", City, Government, Some("示范省公安厅")),
    d("东川市人力资源和社会保障局", "320100", City, Government, Some("示范省人力资源和社会保障厅")),
    d("东川市市场监督管理局", "320100", City, Government, Some("示范省市场监督管理局")),
    d("西岭市大数据管理局", "320200", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("西岭市公安局", "320200", City, Government, Some("示范省公安厅")),
    d("西岭市民政局", "320200", City, Government, Some("示范省民政厅")),
    d("南湖市大数据管理局", "320300", City, SharingAuthority, Some(AUTHORITY_NAME)),
    d("南湖市卫生健康委员会", "320300", City, Government, Some("示范省卫生健康委员会")),
    d("示范省发展和改革委员会", "320000", Province, DevelopmentReform, None),
    d("示范省财政厅", "320000", Province, Finance, None),
];

/// An information item: name, data type code, length (0: none), sharing (`u`/`c`/`n`), base item, mask kind.
pub(super) type DemoItem = (&'static str, &'static str, u32, char, bool, Option<&'static str>);

/// One demo resource: provider, classification, name, summary, items (name, type, length, sharing, base
/// item, mask), update cycle, open to the public, and the state to leave it in.
pub(super) struct DemoResource {
    pub(super) provider: &'static str,
    pub(super) class: &'static str,
    pub(super) name: &'static str,
    pub(super) summary: &'static str,
    pub(super) items: &'static [DemoItem],
    pub(super) cycle: &'static str,
    pub(super) open: bool,
    pub(super) state: DemoState,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum DemoState {
    Published,
    Submitted,
    Returned,
    Draft,
}

pub(super) use DemoState::{Draft, Published, Returned, Submitted};

/// `u` 无条件, `c` 有条件, `n` 不予共享.
pub(super) const CATALOG: &[DemoResource] = &[
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "人口基本信息",
        summary: "全省户籍人口基本信息，含公民身份号码、姓名、性别、民族、出生日期、户籍地址，是人口基础信息库的核心资源。",
        items: &[
            ("公民身份号码", "C", 18, 'u', true, Some("id_number")),
            ("姓名", "C", 50, 'u', true, Some("name")),
            ("性别", "C", 1, 'u', true, None),
            ("民族", "C", 20, 'u', true, None),
            ("出生日期", "D", 8, 'u', true, None),
            ("户籍地址", "C", 200, 'c', false, Some("address")),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "流动人口居住登记信息",
        summary: "流动人口居住登记、居住证办理信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("姓名", "C", 50, 'c', false, Some("name")),
            ("居住地址", "C", 200, 'c', false, Some("address")),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "101",
        name: "户籍迁移信息",
        summary: "户口迁入、迁出、注销登记信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("迁移类型", "C", 10, 'c', false, None),
            ("迁移日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Submitted,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "211",
        name: "机动车驾驶人信息",
        summary: "机动车驾驶证核发、换证、记分信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("准驾车型", "C", 10, 'c', false, None),
            ("累积记分", "I", 3, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "101",
        name: "婚姻登记信息",
        summary: "结婚、离婚登记信息，用于公积金、不动产等业务核验婚姻状况。",
        items: &[
            ("男方公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("女方公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("登记类型", "C", 10, 'c', false, None),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "202",
        name: "最低生活保障对象信息",
        summary: "城乡低保对象认定、救助金发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("保障类别", "C", 20, 'c', false, None),
            ("月保障金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省民政厅",
        class: "209",
        name: "社会组织登记信息",
        summary: "社会团体、民办非企业单位、基金会登记信息。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("组织名称", "C", 200, 'u', false, None),
            ("登记状态", "C", 10, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "102",
        name: "法人单位基本信息",
        summary: "企业法人、个体工商户、农民专业合作社的登记基本信息，是法人单位基础信息库的核心资源。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', true, None),
            ("单位名称", "C", 200, 'u', true, None),
            ("法定代表人", "C", 50, 'u', true, None),
            ("住所", "C", 200, 'u', true, None),
            ("成立日期", "D", 8, 'u', true, None),
            ("注册资本", "Y", 16, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "104",
        name: "企业经营异常名录",
        summary: "列入、移出经营异常名录的企业信息。",
        items: &[
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("列入原因", "C", 200, 'u', false, None),
            ("列入日期", "D", 8, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "203",
        name: "食品生产许可信息",
        summary: "食品生产许可证核发、变更、注销信息。",
        items: &[
            ("许可证编号", "C", 30, 'u', false, None),
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("食品类别", "C", 100, 'u', false, None),
            ("有效期至", "D", 8, 'u', false, None),
        ],
        cycle: "daily",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省市场监督管理局",
        class: "205",
        name: "重要商品价格监测信息",
        summary: "粮油、肉禽蛋、蔬菜等重要民生商品价格监测数据。",
        items: &[("商品名称", "C", 50, 'u', false, None), ("监测价格", "Y", 12, 'u', false, None), ("监测日期", "D", 8, 'u', false, None)],
        cycle: "weekly",
        open: true,
        state: Draft,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "202",
        name: "社会保险参保信息",
        summary: "职工养老、医疗、失业、工伤保险参保登记与缴费信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("险种", "C", 20, 'c', false, None),
            ("参保状态", "C", 10, 'c', false, None),
            ("缴费基数", "Y", 12, 'n', false, None),
            ("姓名", "C", 50, 'c', false, Some("name")),
            ("户籍地址", "C", 200, 'c', false, Some("address")),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "202",
        name: "养老金领取信息",
        summary: "基本养老金领取资格认证与发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("领取月份", "C", 6, 'c', false, None),
            ("发放金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Returned,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "105",
        name: "职业资格证书信息",
        summary: "专业技术人员职业资格证书电子证照信息。",
        items: &[
            ("证书编号", "C", 30, 'u', true, None),
            ("持证人公民身份号码", "C", 18, 'u', true, Some("id_number")),
            ("资格名称", "C", 100, 'u', true, None),
            ("发证日期", "D", 8, 'u', true, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省人力资源和社会保障厅",
        class: "213",
        name: "就业登记信息",
        summary: "城镇就业、失业登记信息，用于就业补贴审核。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("就业状态", "C", 10, 'c', false, None),
            ("登记日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "出生医学证明信息",
        summary: "新生儿出生医学证明签发信息，用于户籍登记与社保参保。",
        items: &[
            ("出生医学证明编号", "C", 20, 'c', false, None),
            ("新生儿姓名", "C", 50, 'c', false, Some("name")),
            ("母亲公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("出生日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "医疗机构执业登记信息",
        summary: "医疗机构执业许可登记、校验信息。",
        items: &[
            ("医疗机构名称", "C", 200, 'u', false, None),
            ("统一社会信用代码", "C", 18, 'u', false, None),
            ("诊疗科目", "M", 0, 'u', false, None),
        ],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省卫生健康委员会",
        class: "201",
        name: "死亡医学证明信息",
        summary: "居民死亡医学证明（推断）书信息，用于户籍注销、停发养老金。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("死亡日期", "D", 8, 'c', false, None),
            ("死亡原因", "C", 200, 'n', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "103",
        name: "不动产登记信息",
        summary: "土地、房屋等不动产权利登记信息。",
        items: &[
            ("不动产单元号", "C", 28, 'c', false, None),
            ("权利人证件号码", "C", 18, 'c', false, Some("id_number")),
            ("坐落", "C", 200, 'c', false, Some("address")),
            ("权利类型", "C", 20, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "103",
        name: "基础地理信息",
        summary: "1:10000 基础地理信息数据，含行政区划界线、道路、水系。",
        items: &[("要素编码", "C", 10, 'u', true, None), ("要素名称", "C", 100, 'u', true, None), ("几何数据", "G", 0, 'u', false, None)],
        cycle: "yearly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省自然资源厅",
        class: "210",
        name: "地质灾害隐患点信息",
        summary: "地质灾害隐患点位置、类型、威胁人数等信息。",
        items: &[
            ("隐患点编号", "C", 20, 'u', false, None),
            ("灾害类型", "C", 20, 'u', false, None),
            ("威胁人数", "I", 8, 'u', false, None),
        ],
        cycle: "quarterly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省大数据管理局",
        class: "106",
        name: "宏观经济主要指标",
        summary: "地区生产总值、固定资产投资、社会消费品零售总额等月度指标。",
        items: &[("指标名称", "C", 100, 'u', true, None), ("统计期", "C", 6, 'u', true, None), ("指标值", "B", 20, 'u', true, None)],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "示范省大数据管理局",
        class: "213",
        name: "政务服务事项目录",
        summary: "全省政务服务事项清单，含事项名称、实施主体、办理时限。",
        items: &[("事项编码", "C", 30, 'u', false, None), ("事项名称", "C", 200, 'u', false, None), ("承诺时限", "I", 4, 'u', false, None)],
        cycle: "irregular",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "东川市公安局",
        class: "211",
        name: "东川市重点场所视频监控点位信息",
        summary: "重点场所视频监控点位分布信息。",
        items: &[("点位编号", "C", 20, 'n', false, None), ("点位坐标", "C", 50, 'n', false, None)],
        cycle: "irregular",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "东川市人力资源和社会保障局",
        class: "202",
        name: "东川市职业技能培训补贴信息",
        summary: "职业技能培训补贴申领与发放信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("培训项目", "C", 100, 'c', false, None),
            ("补贴金额", "Y", 12, 'c', false, None),
        ],
        cycle: "monthly",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "东川市市场监督管理局",
        class: "204",
        name: "东川市特种设备登记信息",
        summary: "电梯、锅炉、压力容器等特种设备使用登记信息。",
        items: &[
            ("设备注册代码", "C", 20, 'u', false, None),
            ("设备类别", "C", 20, 'u', false, None),
            ("使用单位统一社会信用代码", "C", 18, 'u', false, None),
        ],
        cycle: "monthly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "西岭市民政局",
        class: "209",
        name: "西岭市城乡社区信息",
        summary: "城乡社区（居委会、村委会）基本信息。",
        items: &[
            ("社区代码", "C", 12, 'u', false, None),
            ("社区名称", "C", 100, 'u', false, None),
            ("所属街道", "C", 100, 'u', false, None),
        ],
        cycle: "yearly",
        open: true,
        state: Published,
    },
    DemoResource {
        provider: "西岭市公安局",
        class: "101",
        name: "西岭市居住证办理信息",
        summary: "居住证申领、签注信息。",
        items: &[
            ("公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("居住证号", "C", 20, 'c', false, None),
            ("签注日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Draft,
    },
    DemoResource {
        provider: "南湖市卫生健康委员会",
        class: "201",
        name: "南湖市预防接种信息",
        summary: "儿童预防接种记录，用于入托入学查验。",
        items: &[
            ("受种者公民身份号码", "C", 18, 'c', false, Some("id_number")),
            ("疫苗名称", "C", 50, 'c', false, None),
            ("接种日期", "D", 8, 'c', false, None),
        ],
        cycle: "daily",
        open: false,
        state: Published,
    },
    DemoResource {
        provider: "示范省公安厅",
        class: "211",
        name: "在押人员信息",
        summary: "看守所在押人员信息。",
        items: &[("公民身份号码", "C", 18, 'n', false, Some("id_number")), ("羁押状态", "C", 10, 'n', false, None)],
        cycle: "daily",
        open: false,
        state: Published,
    },
];

pub(super) fn demo_document(r: &DemoResource) -> shutong_catalog::ResourceDocument {
    use shutong_catalog::*;
    let sharing = |c: char| match c {
        'u' => SharingType::Unconditional,
        'n' => SharingType::NotShared,
        _ => SharingType::Conditional,
    };
    let items: Vec<InfoItem> = r
        .items
        .iter()
        .map(|(name, t, len, s, base, mask)| InfoItem {
            name: (*name).into(),
            data_type: DataType::parse(t).unwrap_or(DataType::Char),
            length: (*len > 0).then_some(*len),
            required: true,
            is_key: name.contains("公民身份号码") || name.contains("统一社会信用代码") || name.contains("编号") || name.contains("编码"),
            mask: mask.and_then(shutong_reference::MaskKind::parse),
            sharing_type: sharing(*s),
            sharing_condition: (*s == 'c').then(|| "仅向承担相关行政职能的部门提供".to_string()),
            standard: name.contains("公民身份号码").then(|| "GB 11643-1999".to_string()),
            is_base_item: *base,
        })
        .collect();
    let all = |t: SharingType| items.iter().all(|i| i.sharing_type == t);
    let sharing_type = if all(SharingType::Unconditional) {
        SharingType::Unconditional
    } else if all(SharingType::NotShared) {
        SharingType::NotShared
    } else {
        SharingType::Conditional
    };
    ResourceDocument {
        name: r.name.into(),
        summary: r.summary.into(),
        format: ResourceFormat::Database,
        sharing_condition: (sharing_type == SharingType::Conditional).then(|| "部分信息项仅向承担相关职能的部门提供".into()),
        permitted_usage: (sharing_type == SharingType::Conditional).then(|| "仅用于申请时载明的行政职能，不得向第三方提供".into()),
        legal_basis: (sharing_type == SharingType::NotShared).then(|| "《中华人民共和国保守国家秘密法》《公安机关执法细则》".into()),
        // 基础信息资源 (class 1xx) are also offered for bulk download; thematic and departmental ones are queried
        // and exchanged through nodes and system integration only.
        sharing_methods: if sharing_type == SharingType::NotShared {
            vec![]
        } else if r.class.starts_with('1') {
            vec![SharingMethod::OnlineQuery, SharingMethod::ExchangeNode, SharingMethod::BulkDownload, SharingMethod::SystemIntegration]
        } else {
            vec![SharingMethod::OnlineQuery, SharingMethod::ExchangeNode, SharingMethod::SystemIntegration]
        },
        open_to_public: r.open && sharing_type != SharingType::NotShared,
        open_condition: None,
        update_cycle: UpdateCycle::parse(r.cycle).unwrap_or(UpdateCycle::Irregular),
        related_codes: vec![],
        secrecy: Secrecy::NonClassified,
        network: Network::Outer,
        source_system: Some(format!("{}业务系统", r.provider)),
        contact: Some("数据管理处 025-8000 0000".into()),
        record_count: Some((r.name.len() as i64) * 137_000),
        storage_mb: None,
        tags: if r.class.starts_with('1') { vec!["基础".into()] } else { vec!["主题".into()] },
        sharing_type,
        items,
    }
}
