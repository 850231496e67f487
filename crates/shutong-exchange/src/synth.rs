//! Synthetic data with valid identifiers, deterministic for a seed: the demo's pooled datasets and the
//! benchmark harness's input. Every 公民身份号码 and 统一社会信用代码 is unique within a run and passes the
//! reference crate's checks. The people and organisations do not exist.

use shutong_reference::{CreditCode, IdNumber, OrgCode};
use std::io::Write;

/// The items of the demo's 人口基本信息, in order.
pub const POPULATION_ITEMS: [&str; 6] = ["公民身份号码", "姓名", "性别", "民族", "出生日期", "户籍地址"];
/// The items of the demo's 法人单位基本信息, in order.
pub const ENTITY_ITEMS: [&str; 6] = ["统一社会信用代码", "单位名称", "法定代表人", "住所", "成立日期", "注册资本"];

const REGIONS: [(&str, &str); 8] = [
    ("320102", "南京市玄武区"),
    ("320104", "南京市秦淮区"),
    ("320105", "南京市建邺区"),
    ("320106", "南京市鼓楼区"),
    ("320111", "南京市浦口区"),
    ("320113", "南京市栖霞区"),
    ("320114", "南京市雨花台区"),
    ("320115", "南京市江宁区"),
];
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str =
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅旭宁龙林欣晨阳雪婷佳琳子涵梓轩雨欣一诺思远";
const STREETS: [&str; 12] =
    ["中山路", "北京东路", "汉中路", "龙蟠路", "江东中路", "应天大街", "龙眠大道", "文澜路", "雨花大道", "珠江路", "广州路", "集庆路"];
const NATIONS: [&str; 6] = ["汉族", "汉族", "汉族", "回族", "满族", "壮族"];
const INDUSTRIES: [&str; 10] = ["科技", "贸易", "建设工程", "物流", "餐饮管理", "信息技术", "医疗器械", "文化传媒", "新能源", "农业发展"];

/// A 64-bit mix (splitmix64): deterministic pseudo-randomness per row.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick(s: &str, r: u64) -> char {
    let n = s.chars().count() as u64;
    s.chars().nth((r % n) as usize).unwrap_or('王')
}

/// Days from 1940-01-01 covered by birth dates (to 2009-12-31).
const DAYS: u64 = 25_567;
/// Identifier space: regions × days × 3-digit sequence.
const SPACE: u64 = 8 * DAYS * 1000;
/// Multiplier coprime with SPACE: row i ↦ (i·A + seed) mod SPACE is a bijection, so identifiers are unique.
const A: u64 = 2_654_435_761;

/// Row `i` of the synthetic population: values of [`POPULATION_ITEMS`].
pub fn person(i: u64, seed: u64) -> [String; 6] {
    let x = (i % SPACE).wrapping_mul(A % SPACE) % SPACE;
    let x = (x + seed % SPACE) % SPACE;
    let seq = x % 1000;
    let day = (x / 1000) % DAYS;
    let region = (x / 1000 / DAYS) as usize % REGIONS.len();
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Days::new(day);
    let mut first17 = [0u8; 17];
    let body = format!("{}{}{:03}", REGIONS[region].0, birth.format("%Y%m%d"), seq);
    first17.copy_from_slice(body.as_bytes());
    let check = IdNumber::check_character(&first17).unwrap_or('0');
    let r = mix(i ^ seed.rotate_left(17));
    let mut name = String::new();
    name.push(pick(SURNAMES, r));
    name.push(pick(GIVEN, r >> 8));
    if r & 0x1_0000 != 0 {
        name.push(pick(GIVEN, r >> 20));
    }
    let sex = if seq % 2 == 1 { "男" } else { "女" };
    let address = format!(
        "{}{}{}号{}栋{}室",
        REGIONS[region].1,
        STREETS[(r >> 32) as usize % STREETS.len()],
        (r >> 36) % 300 + 1,
        (r >> 45) % 30 + 1,
        (r >> 50) % 2000 + 101
    );
    [
        format!("{body}{check}"),
        name,
        sex.to_string(),
        NATIONS[(r >> 40) as usize % NATIONS.len()].to_string(),
        birth.format("%Y%m%d").to_string(),
        address,
    ]
}

/// Row `i` of the synthetic legal entities: values of [`ENTITY_ITEMS`].
pub fn entity(i: u64, seed: u64) -> [String; 6] {
    let r = mix(i.wrapping_add(seed.rotate_left(29)));
    let region = REGIONS[(r % REGIONS.len() as u64) as usize];
    // Organisation code body: 8 digits, unique per row (i < 10^8).
    let body = format!("{:08}", (i.wrapping_mul(48_271) + seed) % 100_000_000);
    let org_check = OrgCode::check_character(body.as_bytes()).unwrap_or('0');
    let first17 = format!("91{}{}{}", region.0, body, org_check);
    let check = CreditCode::check_character(first17.as_bytes()).unwrap_or('0');
    let name = format!("南京{}{}{}有限公司", pick(GIVEN, r >> 8), pick(GIVEN, r >> 16), INDUSTRIES[(r >> 24) as usize % INDUSTRIES.len()]);
    let founded = chrono::NaiveDate::from_ymd_opt(1995, 1, 1).unwrap_or_default() + chrono::Days::new((r >> 32) % 11_000);
    [
        format!("{first17}{check}"),
        name,
        format!("{}{}{}", pick(SURNAMES, r >> 40), pick(GIVEN, r >> 44), pick(GIVEN, r >> 50)),
        format!("{}{}{}号", region.1, STREETS[(r >> 36) as usize % STREETS.len()], (r >> 52) % 500 + 1),
        founded.format("%Y%m%d").to_string(),
        format!("{}.00", ((r >> 12) % 5000 + 10) * 10),
    ]
}

/// Writes `n` rows of the population as CSV with a header.
pub fn write_population_csv(mut w: impl Write, n: u64, seed: u64) -> std::io::Result<()> {
    writeln!(w, "{}", POPULATION_ITEMS.join(","))?;
    for i in 0..n {
        let p = person(i, seed);
        writeln!(w, "{},{},{},{},{},{}", p[0], p[1], p[2], p[3], p[4], p[5])?;
    }
    Ok(())
}

/// Writes `n` rows of legal entities as CSV with a header.
pub fn write_entities_csv(mut w: impl Write, n: u64, seed: u64) -> std::io::Result<()> {
    writeln!(w, "{}", ENTITY_ITEMS.join(","))?;
    for i in 0..n {
        let e = entity(i, seed);
        writeln!(w, "{},{},{},{},{},{}", e[0], e[1], e[2], e[3], e[4], e[5])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_reference::IdNumberValidator;
    use std::collections::HashSet;

    #[test]
    fn identifiers_are_valid_unique_and_deterministic() {
        let v = IdNumberValidator::new(chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        let mut ids = HashSet::new();
        let mut codes = HashSet::new();
        for i in 0..20_000 {
            let p = person(i, 7);
            assert!(v.parse(&p[0]).is_ok(), "{}", p[0]);
            assert!(ids.insert(p[0].clone()), "duplicate {}", p[0]);
            let e = entity(i, 7);
            assert!(CreditCode::parse(&e[0]).is_ok(), "{}", e[0]);
            assert!(codes.insert(e[0].clone()), "duplicate {}", e[0]);
        }
        assert_eq!(person(5, 7), person(5, 7));
        assert_ne!(person(5, 7)[0], person(5, 8)[0]);
    }
}
