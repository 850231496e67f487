//! 分页: one way of paging for every list of the portal. Lists run newest (or first) to last by a keyset
//! cursor, never by offset: a page is a URL holding the list's filters and the cursor, so that a filtered
//! view, and any page of it, can be bookmarked and shared, and reloading it shows the same rows.

/// The rows a portal list shows per page.
pub const PAGE_SIZE: i64 = 50;

/// The links under a list: back to its first page (when not on it) and on to the next (when there is one).
pub struct Pager {
    /// Rows on this page.
    pub shown: usize,
    pub first: Option<String>,
    pub next: Option<String>,
}

/// `path?k=v&…` with the non-empty `filters`, URL-encoded.
pub fn url(path: &str, filters: &[(&str, String)]) -> String {
    let kept: Vec<(&str, &str)> = filters.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (*k, v.as_str())).collect();
    if kept.is_empty() {
        return path.to_string();
    }
    format!("{path}?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

impl Pager {
    /// The pager of a page of `shown` rows of the list at `path` with `filters`: `cursor` names the cursor
    /// parameter, `at` the cursor this page was asked with (none: the first page), `next` the cursor of
    /// the next page (none: this is the last).
    pub fn new(path: &str, filters: &[(&str, String)], cursor: &str, at: Option<String>, next: Option<String>, shown: usize) -> Pager {
        let with = |c: Option<String>| {
            let mut all = filters.to_vec();
            all.extend(c.map(|c| (cursor, c)));
            url(path, &all)
        };
        Pager { shown, first: at.filter(|c| !c.is_empty()).map(|_| with(None)), next: next.map(|c| with(Some(c))) }
    }

    /// The pager of a list whose rows carry increasing or decreasing numeric keys, asked for `PAGE_SIZE`
    /// rows: a full page has a next one, from its last key.
    pub fn by_key(path: &str, filters: &[(&str, String)], cursor: &str, at: Option<i64>, last_key: Option<i64>, shown: usize) -> Pager {
        let next = if shown as i64 >= PAGE_SIZE { last_key.map(|k| k.to_string()) } else { None };
        Pager::new(path, filters, cursor, at.map(|a| a.to_string()), next, shown)
    }

    /// The pager's HTML (a navigation landmark), for the list templates' `{{ pager.html()|safe }}`.
    pub fn html(&self) -> String {
        if self.first.is_none() && self.next.is_none() {
            return String::new();
        }
        let mut h = String::from("<nav class=\"pager\" aria-label=\"分页\" data-testid=\"pager\">");
        if let Some(f) = &self.first {
            h.push_str(&format!("<a href=\"{}\" data-testid=\"pager-first\">← 第一页</a>", super::html_escape(f)));
        }
        h.push_str(&format!("<span class=\"muted\">本页 {} 条</span>", self.shown));
        if let Some(n) = &self.next {
            h.push_str(&format!("<a href=\"{}\" data-testid=\"pager-next\">下一页 →</a>", super::html_escape(n)));
        }
        h.push_str("</nav>");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_their_filters_and_cursor() {
        let f = [("side", "all".to_string()), ("status", String::new()), ("q", "婚姻 登记".to_string())];
        let p = Pager::by_key("/requests", &f, "before", None, Some(120), PAGE_SIZE as usize);
        assert_eq!(p.first, None, "the first page has no link back to itself");
        assert_eq!(p.next.as_deref(), Some("/requests?side=all&q=%E5%A9%9A%E5%A7%BB+%E7%99%BB%E8%AE%B0&before=120"));
        let last = Pager::by_key("/requests", &f, "before", Some(120), Some(80), 7);
        assert_eq!(last.next, None, "a short page is the last");
        assert_eq!(last.first.as_deref(), Some("/requests?side=all&q=%E5%A9%9A%E5%A7%BB+%E7%99%BB%E8%AE%B0"));
        assert!(last.html().contains("本页 7 条") && last.html().contains("第一页"));
        assert_eq!(Pager::by_key("/grants", &[], "before", None, Some(3), 3).html(), "", "one page: no pager");
        assert!(Pager::new("/a", &[], "c", None, Some("x\"y".into()), 1).html().contains("c=x%22y"));
    }
}
