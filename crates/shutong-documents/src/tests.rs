use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::Instant;

use serde_json::json;
use typst::layout::{Frame, FrameItem, PagedDocument};

use super::*;

/// The machine's fonts, discovered once for all tests (as the server does at start-up).
static FONTS: LazyLock<Fonts> =
    LazyLock::new(|| Fonts::discover(&Fonts::default_dirs()).expect("a CJK font is installed (scripts/test installs fonts-wqy-zenhei)"));

/// An example of what a module's template looks like: a 自查报告 with a table built from the data.
const SELF_INSPECTION: &str = r#"#let d = json("/data.json")
#set page(paper: "a4", margin: 2cm)
#set document(title: d.title)
#align(center, text(size: 18pt, weight: "bold", d.title))

= 一、基本情况
#d.summary

= 二、检查事项
#table(
  columns: (auto, 1fr, auto),
  table.header([序号], [检查事项], [结论]),
  ..d.items.enumerate().map(((i, item)) => (str(i + 1), item.name, item.result)).flatten(),
)

= 三、说明
#d.note
"#;

/// Text a user may type that means something in typst markup or code.
const SPECIAL: &str = r#"a#b [c] $x^2$ \n \\ *bold* _em_ `raw` <label> @ref // no comment /* nor this */ #let x = 1; {}"#;

fn self_inspection_data() -> serde_json::Value {
    json!({
        "title": "市数据局2025年度数据共享自查报告",
        "summary": "本部门共登记政务数据资源目录42项，均已按要求挂接。",
        "items": [
            { "name": "目录编制是否完整", "result": "符合" },
            { "name": "共享属性是否准确", "result": "基本符合" },
            { "name": "更新周期是否落实", "result": "不符合" },
        ],
        "note": SPECIAL,
    })
}

/// The text typst placed on each page, in order, without going through PDF.
fn page_texts(template: &str, data: &serde_json::Value) -> Vec<String> {
    let world = world::DocumentWorld::new(&FONTS, template, typst::foundations::Bytes::new(serde_json::to_vec(data).unwrap()));
    let document = typst::compile::<PagedDocument>(&world).output.expect("the template compiles");
    fn collect(frame: &Frame, out: &mut String) {
        for (_, item) in frame.items() {
            match item {
                FrameItem::Group(group) => collect(&group.frame, out),
                FrameItem::Text(text) => out.push_str(&text.text),
                _ => {}
            }
        }
    }
    document
        .pages
        .iter()
        .map(|page| {
            let mut text = String::new();
            collect(&page.frame, &mut text);
            text
        })
        .collect()
}

/// `s` without its white space.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `pdftotext -layout` of `pdf`, or `None` (with a note) if poppler-utils is not installed.
fn pdftotext(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf).unwrap();
    match Command::new("pdftotext").arg("-layout").arg(&path).arg("-").output() {
        Ok(output) => {
            assert!(output.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&output.stderr));
            Some(String::from_utf8(output.stdout).unwrap())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: pdftotext is not installed (Debian: poppler-utils); PDF text not checked");
            None
        }
        Err(e) => panic!("running pdftotext: {e}"),
    }
}

#[test]
fn fonts_put_a_cjk_family_first() {
    let family = FONTS.cjk_family();
    assert!(!family.is_empty());
    let first = FONTS.inner.font(0).expect("the first face loads");
    assert!(first.info().coverage.contains(u32::from('中')), "the first face in the book has Chinese glyphs");
    eprintln!("{:?}", *FONTS);
}

#[test]
fn no_cjk_font_is_refused_naming_the_directories_and_packages() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("missing");
    let dirs = vec![empty.path().to_path_buf(), missing.clone()];
    let err = Fonts::discover(&dirs).unwrap_err();
    assert!(matches!(&err, DocumentError::NoCjkFont { searched } if searched == &dirs));
    let message = err.to_string();
    assert!(message.contains(&empty.path().display().to_string()), "{message}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
    assert!(message.contains("fonts-wqy-zenhei") && message.contains("fonts-noto-cjk"), "{message}");
}

#[test]
fn latin_only_fonts_are_refused() {
    let dejavu = PathBuf::from("/usr/share/fonts/truetype/dejavu");
    if !dejavu.is_dir() {
        eprintln!("note: no DejaVu fonts here; skipped");
        return;
    }
    assert!(matches!(Fonts::discover(&[dejavu]), Err(DocumentError::NoCjkFont { .. })));
}

#[test]
fn user_text_is_printed_literally() {
    let pages = page_texts("#let d = json(\"/data.json\")\n#d.note\n\n#d.items.at(0).name", &self_inspection_data());
    let text: String = pages.concat();
    // typst places words as separate text runs; compare without the spaces between them.
    assert!(squeeze(&text).contains(&squeeze(SPECIAL)), "{text}");
    assert!(text.contains("目录编制是否完整"), "{text}");
}

#[test]
fn self_inspection_report_text_comes_back_from_the_pdf() {
    let pdf = render_pdf(&FONTS, SELF_INSPECTION, &self_inspection_data()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let Some(text) = pdftotext(&pdf) else { return };
    for expected in [
        "市数据局2025年度数据共享自查报告",
        "一、基本情况",
        "本部门共登记政务数据资源目录42项，均已按要求挂接。",
        "二、检查事项",
        "序号",
        "检查事项",
        "共享属性是否准确",
        "基本符合",
        "更新周期是否落实",
        "三、说明",
    ] {
        // With `lang: "zh"` typst sets a quarter-em gap between Chinese and Latin or digits, which
        // pdftotext prints as a space: "市数据局 2025 年度".
        assert!(squeeze(&text).contains(expected), "{expected:?} not in:\n{text}");
    }
    // The layout may break the line; every word of the user's text comes back as typed, in order.
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    assert!(joined.contains(SPECIAL), "{SPECIAL:?} not in:\n{text}");
}

#[test]
fn template_errors_name_the_line() {
    let err = render_pdf(&FONTS, "= 标题\n\n#unknown_function()", &json!({})).unwrap_err();
    let DocumentError::Template(message) = &err else { panic!("{err}") };
    assert!(message.starts_with("line 3: unknown variable: unknown_function"), "{message}");

    // Data that lacks a field the template reads.
    let err = render_pdf(&FONTS, "#let d = json(\"/data.json\")\n#d.title", &json!({})).unwrap_err();
    let DocumentError::Template(message) = &err else { panic!("{err}") };
    assert!(message.starts_with("line 2: ") && message.contains("title"), "{message}");
}

#[test]
fn templates_read_only_their_data() {
    for (template, what) in [
        ("#read(\"/etc/passwd\")", "file not found"),
        ("#read(\"../../../../etc/passwd\")", "file not found"),
        ("#image(\"/logo.png\")", "file not found"),
        ("#import \"other.typ\": x", "file not found"),
        ("#import \"@preview/example:0.1.0\": *", "not found"),
        ("#datetime.today().display()", "current date"),
    ] {
        let err = render_pdf(&FONTS, template, &json!({})).unwrap_err();
        let DocumentError::Template(message) = &err else { panic!("{template}: {err}") };
        assert!(message.contains(what), "{template}: {message}");
    }
}

/// Not a benchmark with a threshold: prints how long a three-page document takes in this profile.
#[test]
fn a_three_page_document_renders_and_its_time_is_printed() {
    let rows: Vec<_> =
        (1..=75).map(|i| json!({ "name": format!("第{i}项：政务数据资源目录的共享属性与更新周期核查"), "result": "符合" })).collect();
    let data = json!({
        "title": "年度评估报告（样例）",
        "summary": "本报告用于测量渲染时间。",
        "items": rows,
        "note": "（完）",
    });
    // A cold start: fonts not yet read, typst's memoisation cache empty (other tests running at the same
    // time may fill it; then the first figure is lower).
    typst::comemo::evict(0);
    let fonts = Fonts::discover(&Fonts::default_dirs()).unwrap();
    let start = Instant::now();
    let first = render_pdf(&fonts, SELF_INSPECTION, &data).unwrap();
    let first_time = start.elapsed();
    let start = Instant::now();
    let second = render_pdf(&fonts, SELF_INSPECTION, &data).unwrap();
    let second_time = start.elapsed();
    assert_eq!(first, second, "the same data renders the same PDF");
    // Another department's report: fonts loaded, but little of the layout can come from the cache.
    let mut other = data.clone();
    other["title"] = json!("区政务服务中心年度评估报告（样例）");
    for (i, row) in other["items"].as_array_mut().unwrap().iter_mut().enumerate() {
        row["result"] = json!(if i % 2 == 0 { "基本符合" } else { "不符合" });
    }
    let start = Instant::now();
    render_pdf(&fonts, SELF_INSPECTION, &other).unwrap();
    let other_time = start.elapsed();
    let pages = page_texts(SELF_INSPECTION, &data).len();
    assert_eq!(pages, 3, "the sample data fills three pages");
    eprintln!(
        "rendering a {pages}-page document ({} KiB): first {first_time:.2?} (cold), \
         the same again {second_time:.2?}, other data {other_time:.2?}",
        first.len() / 1024
    );
}

#[test]
fn fonts_are_found_under_links_and_nested_directories() {
    let source = Path::new("/usr/share/fonts");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(source, dir.path().join("linked")).unwrap();
    // A loop back to the top must not be walked forever.
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let fonts = Fonts::discover(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(fonts.face_count(), Fonts::discover(&[source.to_path_buf()]).unwrap().face_count());
}

#[test]
fn the_readme_example_renders() {
    let readme = include_str!("../README.md");
    let start = readme.find("```typst\n").expect("the README shows a template") + "```typst\n".len();
    let template = &readme[start..start + readme[start..].find("```").unwrap()];
    let data = json!({
        "department": "市数据局",
        "items": [{ "name": "目录编制是否完整", "result": "符合" }],
    });
    let text = page_texts(template, &data).concat();
    assert!(text.contains("市数据局") && text.contains("目录编制是否完整"), "{text}");
}
