//! 统计图表: the portal's chart component, drawn on the server as SVG (no script, no library, nothing from
//! another host: the platform runs on government networks without internet, and the content security policy
//! allows no inline script). Two kinds: horizontal bars (a figure per category, each bar optionally a
//! link) and columns over days (stacked by series, with a legend). Each chart carries its figures as a
//! table for screen readers and for copying, and `data-testid` for the tests.

use super::html_escape;

/// One bar: a category, its figure, and the page that lists what it counts.
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub href: Option<String>,
}

/// Horizontal bars, largest first as given.
pub struct BarChart {
    pub testid: &'static str,
    pub title: String,
    pub bars: Vec<Bar>,
}

/// Series of one figure per day, drawn as stacked columns.
pub struct DayChart {
    pub testid: &'static str,
    pub title: String,
    pub days: Vec<chrono::NaiveDate>,
    /// (series name, one value per day).
    pub series: Vec<(String, Vec<i64>)>,
}

/// Stacked columns over any sequence (months, quarters): each column's full label (tooltips, the table),
/// and the short one drawn under it (empty: none).
pub struct ColumnChart {
    pub testid: &'static str,
    pub title: String,
    /// What a column is (the table's first heading): 日期, 月份.
    pub column_head: &'static str,
    pub columns: Vec<(String, String)>,
    /// (series name, one value per column).
    pub series: Vec<(String, Vec<i64>)>,
}

const PALETTE: [&str; 8] = ["#2d6cc0", "#f5a623", "#2e9e6a", "#c2410c", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

fn table(title: &str, head: &[String], rows: &[Vec<String>]) -> String {
    let mut t = format!("<table class=\"sr-only\"><caption>{}</caption><thead><tr>", html_escape(title));
    for h in head {
        t.push_str(&format!("<th scope=\"col\">{}</th>", html_escape(h)));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
            t.push_str(&format!("<{tag}>{}</{}>", html_escape(c), &tag[..2]));
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table>");
    t
}

impl BarChart {
    /// The chart as HTML: a figure with its title, the SVG, and the table of its figures.
    pub fn html(&self) -> String {
        let row_h = 28;
        let label_w = 200;
        let bar_w = 420;
        let height = (self.bars.len().max(1) * row_h + 8) as i64;
        let max = self.bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
        // With links the chart is a group of them (an image cannot hold links), else one image.
        let role = if self.bars.iter().any(|b| b.href.is_some()) { "group" } else { "img" };
        let mut svg = format!(
            "<svg class=\"chart\" viewBox=\"0 0 {w} {height}\" role=\"{role}\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\">",
            w = label_w + bar_w + 80,
            t = html_escape(&self.title)
        );
        if self.bars.is_empty() {
            svg.push_str("<text x=\"0\" y=\"20\" class=\"empty\">暂无数据</text>");
        }
        for (i, b) in self.bars.iter().enumerate() {
            let y = (i * row_h) as i64 + 4;
            let w = (b.value.max(0) * bar_w as i64 / max).max(if b.value > 0 { 2 } else { 0 });
            let label = html_escape(&b.label);
            let bar = format!(
                "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"label\">{label}</text>\
                 <rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" rx=\"3\" fill=\"{c}\" data-value=\"{v}\"><title>{label}：{v}</title></rect>\
                 <text x=\"{vx}\" y=\"{ty}\" class=\"value\">{v}</text>",
                lx = label_w - 8,
                ty = y + 15,
                bh = row_h - 8,
                c = PALETTE[0],
                v = b.value,
                vx = label_w as i64 + w + 6,
            );
            match &b.href {
                Some(h) => svg.push_str(&format!("<a href=\"{}\">{bar}</a>", html_escape(h))),
                None => svg.push_str(&bar),
            }
        }
        svg.push_str("</svg>");
        let rows: Vec<Vec<String>> = self.bars.iter().map(|b| vec![b.label.clone(), b.value.to_string()]).collect();
        format!(
            "<figure class=\"chart\" data-testid=\"{id}\"><figcaption>{t}</figcaption>{svg}{table}</figure>",
            id = self.testid,
            t = html_escape(&self.title),
            table = table(&self.title, &["类别".into(), "数量".into()], &rows)
        )
    }
}

impl DayChart {
    /// Every seventh day labelled, counted back from the last, which always is.
    pub fn html(&self) -> String {
        let n = self.days.len();
        ColumnChart {
            testid: self.testid,
            title: self.title.clone(),
            column_head: "日期",
            columns: self
                .days
                .iter()
                .enumerate()
                .map(|(d, day)| {
                    (day.to_string(), if (n - 1 - d).is_multiple_of(7) { day.format("%m-%d").to_string() } else { String::new() })
                })
                .collect(),
            series: self.series.clone(),
        }
        .html()
    }
}

impl ColumnChart {
    pub fn html(&self) -> String {
        let (left, top, plot_h, col_w) = (40i64, 10i64, 160i64, 24i64);
        let n = self.columns.len() as i64;
        let width = left + n.max(1) * col_w + 10;
        let totals: Vec<i64> =
            (0..self.columns.len()).map(|d| self.series.iter().map(|(_, v)| v.get(d).copied().unwrap_or(0)).sum()).collect();
        let max = totals.iter().copied().max().unwrap_or(0).max(1);
        let mut svg = format!(
            "<svg class=\"chart\" viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\">",
            h = top + plot_h + 24,
            t = html_escape(&self.title)
        );
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{b}\" x2=\"{width}\" y2=\"{b}\" class=\"axis\"/><text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\" class=\"label\">{max}</text>\
             <text x=\"{x}\" y=\"{b}\" text-anchor=\"end\" class=\"label\">0</text>",
            b = top + plot_h,
            x = left - 6,
            ty = top + 10
        ));
        for (d, (day, tick)) in self.columns.iter().enumerate() {
            let x = left + d as i64 * col_w + 3;
            let mut y = top + plot_h;
            for (s, (name, values)) in self.series.iter().enumerate() {
                let v = values.get(d).copied().unwrap_or(0);
                if v <= 0 {
                    continue;
                }
                let h = (v * plot_h / max).max(1);
                y -= h;
                svg.push_str(&format!(
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{c}\" data-value=\"{v}\"><title>{day} {name}：{v}</title></rect>",
                    w = col_w - 6,
                    c = PALETTE[s % PALETTE.len()],
                    day = html_escape(day),
                    name = html_escape(name)
                ));
            }
            if !tick.is_empty() {
                svg.push_str(&format!(
                    "<text x=\"{cx}\" y=\"{ty}\" text-anchor=\"middle\" class=\"label\">{md}</text>",
                    cx = x + (col_w - 6) / 2,
                    ty = top + plot_h + 16,
                    md = html_escape(tick)
                ));
            }
        }
        svg.push_str("</svg>");
        let mut legend = String::from("<ul class=\"legend\">");
        for (s, (name, values)) in self.series.iter().enumerate() {
            legend.push_str(&format!(
                "<li><span class=\"swatch s{}\"></span>{}（{}）</li>",
                s % PALETTE.len(),
                html_escape(name),
                values.iter().sum::<i64>()
            ));
        }
        legend.push_str("</ul>");
        let mut head = vec![self.column_head.to_string()];
        head.extend(self.series.iter().map(|(n, _)| n.clone()));
        let rows: Vec<Vec<String>> = self
            .columns
            .iter()
            .enumerate()
            .map(|(d, (day, _))| {
                let mut r = vec![day.clone()];
                r.extend(self.series.iter().map(|(_, v)| v.get(d).copied().unwrap_or(0).to_string()));
                r
            })
            .collect();
        format!(
            "<figure class=\"chart\" data-testid=\"{id}\"><figcaption>{t}</figcaption>{svg}{legend}{table}</figure>",
            id = self.testid,
            t = html_escape(&self.title),
            table = table(&self.title, &head, &rows)
        )
    }
}

/// Day-by-day series from per-day counts: one series per key, in `order`, over `days`.
pub fn day_series<K: PartialEq + Copy>(
    days: &[chrono::NaiveDate],
    order: &[(K, String)],
    counts: impl Iterator<Item = (chrono::NaiveDate, K, i64)>,
) -> Vec<(String, Vec<i64>)> {
    let mut series: Vec<(String, Vec<i64>)> = order.iter().map(|(_, n)| (n.clone(), vec![0; days.len()])).collect();
    for (day, key, n) in counts {
        if let (Some(d), Some(s)) = (days.iter().position(|x| *x == day), order.iter().position(|(k, _)| *k == key)) {
            series[s].1[d] += n;
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_their_labels_and_keep_their_figures() {
        let c = BarChart {
            testid: "t",
            title: "按分类".into(),
            bars: vec![
                Bar { label: "<人口>".into(), value: 10, href: Some("/catalog?class=101".into()) },
                Bar { label: "法人".into(), value: 5, href: None },
            ],
        };
        let h = c.html();
        assert!(h.contains("&lt;人口&gt;") && !h.contains("<人口>"));
        assert!(h.contains("data-value=\"10\"") && h.contains("data-value=\"5\""));
        assert!(h.contains("<a href=\"/catalog?class=101\">"));
        assert!(h.contains("<table class=\"sr-only\">"));
    }

    #[test]
    fn days_stack_their_series() {
        let d = |n| chrono::NaiveDate::from_ymd_opt(2026, 12, n).unwrap();
        let days = vec![d(1), d(2)];
        let series = day_series(&days, &[(1, "查询".into()), (2, "下载".into())], [(d(2), 1, 3), (d(2), 2, 4), (d(9), 1, 1)].into_iter());
        assert_eq!(series, vec![("查询".to_string(), vec![0, 3]), ("下载".to_string(), vec![0, 4])]);
        let h = DayChart { testid: "x", title: "每日".into(), days, series }.html();
        assert!(h.contains("data-value=\"3\"") && h.contains("data-value=\"4\"") && h.contains("查询（3）"));
    }
}
