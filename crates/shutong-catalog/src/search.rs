//! 目录检索: Chinese full-text search over the published catalog, with facets and cursor pagination.
//!
//! **Invariant:** the index is a projection of the database, never the source of truth. It is built from
//! the published versions at start, updated after every change made through this process, reconciled
//! with the database at intervals (changes made by other replicas), and rebuilt on demand
//! (`shutong catalog reindex`, which only rebuilds and checks).

use serde::Serialize;
use shutong_store::{Db, Row};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{FAST, Facet, FacetOptions, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::{LowerCaser, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::model::{ResourceDocument, SharingType, is_classification_code};
use crate::service::{CatalogError, CatalogResult};

/// The facet dimensions, in the order the portal shows them.
pub const FACETS: &[(&str, &str)] = &[
    ("class", "类"),
    ("provider", "提供方"),
    ("region", "行政区划"),
    ("sharing", "共享类型"),
    ("open", "向社会开放"),
    ("format", "资源格式"),
    ("cycle", "更新周期"),
];

struct Fields {
    code: Field,
    name: Field,
    summary: Field,
    items: Field,
    facets: Field,
    provider_name: Field,
    sharing_type: Field,
    classification: Field,
    published_at: Field,
}

/// The search index of the catalog (in memory; rebuilt from the database).
pub struct CatalogIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    parser: QueryParser,
    /// What the database looked like at the last (re)build: for reconciliation.
    watermark: Mutex<(i64, i64)>,
}

/// A search request.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// Free text in Chinese (or anything); empty lists everything, newest first.
    pub q: String,
    /// Facet filters: (dimension, value), e.g. ("sharing", "unconditional"), ("class", "101").
    pub filters: Vec<(String, String)>,
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One hit.
#[derive(Clone, Debug, Serialize)]
pub struct SearchHit {
    pub code: String,
    pub name: String,
    pub summary: String,
    pub provider_name: String,
    pub sharing_type: String,
    pub classification_code: String,
    pub score: f32,
}

/// A facet value and how many hits carry it.
#[derive(Clone, Debug, Serialize)]
pub struct FacetCount {
    pub value: String,
    /// A readable name of the value (Chinese), where one is known.
    pub label: String,
    pub count: u64,
}

/// Search results: hits, the total, facet counts over all hits, and the cursor of the next page.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<SearchHit>,
    /// Per dimension (class, provider, region, sharing, open, format, cycle): values with counts.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    pub next_cursor: Option<String>,
}

fn index_err(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::State(format!("search index: {e}"))
}

/// The row a search document is built from.
struct IndexRow {
    code: String,
    classification: String,
    provider_id: i64,
    provider_name: String,
    region: String,
    published_at: i64,
    document: ResourceDocument,
}

const INDEX_SQL: &str = "SELECT r.code, r.classification_code, r.provider_department_id, d.name AS provider_name, d.region_code, v.published_at, v.document \
    FROM catalog_resources r JOIN catalog_versions v ON v.code = r.code AND v.version = r.published_version \
    JOIN departments d ON d.id = r.provider_department_id WHERE r.status <> 'withdrawn' AND r.published_version IS NOT NULL";

impl CatalogIndex {
    pub fn new() -> CatalogResult<CatalogIndex> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer("zh").set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let fields = Fields {
            code: schema.add_text_field("code", STRING | STORED),
            name: schema.add_text_field("name", text.clone() | STORED),
            summary: schema.add_text_field("summary", text.clone() | STORED),
            items: schema.add_text_field("items", text),
            facets: schema.add_facet_field("facets", FacetOptions::default()),
            provider_name: schema.add_text_field("provider_name", STORED),
            sharing_type: schema.add_text_field("sharing_type", STORED),
            classification: schema.add_text_field("classification", STORED),
            published_at: schema.add_i64_field("published_at", FAST | STORED),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register("zh", TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new()).filter(LowerCaser).build());
        let writer = index.writer_with_num_threads(1, 50_000_000).map_err(index_err)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(index_err)?;
        let mut parser = QueryParser::for_index(&index, vec![fields.name, fields.summary, fields.items]);
        parser.set_field_boost(fields.name, 3.0);
        parser.set_conjunction_by_default();
        Ok(CatalogIndex { reader, writer: Mutex::new(writer), fields, parser, watermark: Mutex::new((-1, -1)) })
    }

    fn to_doc(&self, r: &IndexRow) -> TantivyDocument {
        let f = &self.fields;
        let d = &r.document;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.code, &r.code);
        doc.add_text(f.name, &d.name);
        doc.add_text(f.summary, &d.summary);
        let items: Vec<&str> = d.items.iter().map(|i| i.name.as_str()).collect();
        doc.add_text(f.items, items.join(" "));
        // Classification facets at every level, so that a 类 filter finds resources under its 项 and 目.
        doc.add_facet(f.facets, class_facet(&r.classification));
        if r.classification.len() >= 3 {
            doc.add_facet(f.facets, Facet::from(format!("/subclass/{}", &r.classification[..3]).as_str()));
        }
        doc.add_facet(f.facets, Facet::from(format!("/provider/{}", r.provider_id).as_str()));
        doc.add_facet(f.facets, Facet::from(format!("/region/{}", r.region).as_str()));
        doc.add_facet(f.facets, Facet::from(format!("/sharing/{}", d.sharing_type.as_str()).as_str()));
        doc.add_facet(f.facets, Facet::from(format!("/open/{}", d.open_to_public).as_str()));
        doc.add_facet(f.facets, Facet::from(format!("/format/{}", d.format.as_str()).as_str()));
        doc.add_facet(f.facets, Facet::from(format!("/cycle/{}", d.update_cycle.as_str()).as_str()));
        doc.add_text(f.provider_name, &r.provider_name);
        doc.add_text(f.sharing_type, d.sharing_type.as_str());
        doc.add_text(f.classification, &r.classification);
        doc.add_i64(f.published_at, r.published_at);
        doc
    }

    async fn rows(db: &Db, code: Option<&str>) -> CatalogResult<Vec<IndexRow>> {
        let sql = match code {
            Some(_) => format!("{INDEX_SQL} AND r.code = $1"),
            None => INDEX_SQL.to_string(),
        };
        let mut q = sqlx::query(&sql);
        if let Some(c) = code {
            q = q.bind(c);
        }
        let rows = q.fetch_all(db.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let doc: String = r.try_get("document")?;
            let Ok(document) = serde_json::from_str(&doc) else { continue };
            out.push(IndexRow {
                code: r.try_get("code")?,
                classification: r.try_get("classification_code")?,
                provider_id: r.try_get("provider_department_id")?,
                provider_name: r.try_get("provider_name")?,
                region: r.try_get("region_code")?,
                published_at: r.try_get::<Option<i64>, _>("published_at")?.unwrap_or(0),
                document,
            });
        }
        Ok(out)
    }

    async fn db_watermark(db: &Db) -> CatalogResult<(i64, i64)> {
        let r = sqlx::query("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM catalog_resources").fetch_one(db.pool()).await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    /// Rebuilds the whole index from the database; returns how many resources it holds.
    pub async fn rebuild(&self, db: &Db) -> CatalogResult<usize> {
        let watermark = Self::db_watermark(db).await?;
        let rows = Self::rows(db, None).await?;
        let docs: Vec<TantivyDocument> = rows.iter().map(|r| self.to_doc(r)).collect();
        {
            let mut w = self.writer.lock().map_err(index_err)?;
            w.delete_all_documents().map_err(index_err)?;
            for d in docs {
                w.add_document(d).map_err(index_err)?;
            }
            w.commit().map_err(index_err)?;
        }
        self.reader.reload().map_err(index_err)?;
        *self.watermark.lock().map_err(index_err)? = watermark;
        Ok(rows.len())
    }

    /// Brings one resource up to date (after a change made through this process).
    pub async fn refresh(&self, db: &Db, resource: &crate::ResourceCode) -> CatalogResult<()> {
        let code = resource.as_str();
        let rows = Self::rows(db, Some(code)).await?;
        {
            let mut w = self.writer.lock().map_err(index_err)?;
            w.delete_term(Term::from_field_text(self.fields.code, code));
            for r in &rows {
                w.add_document(self.to_doc(r)).map_err(index_err)?;
            }
            w.commit().map_err(index_err)?;
        }
        self.reader.reload().map_err(index_err)?;
        Ok(())
    }

    /// Rebuilds if the database changed since the last build (changes made by other replicas).
    pub async fn reconcile(&self, db: &Db) -> CatalogResult<bool> {
        let now = Self::db_watermark(db).await?;
        let last = *self.watermark.lock().map_err(index_err)?;
        if now == last {
            return Ok(false);
        }
        self.rebuild(db).await?;
        Ok(true)
    }

    /// How many resources the index holds.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Searches: relevance for a text query, newest first without one.
    pub fn search(&self, req: &SearchRequest) -> CatalogResult<SearchResults> {
        let invalid = |field: &str, message: String| CatalogError::Validation { field: field.into(), message };
        let offset: usize = match &req.cursor {
            Some(c) => c.parse().map_err(|_| invalid("cursor", format!("'{c}' is not a cursor of this search")))?,
            None => 0,
        };
        if offset > 100_000 {
            return Err(invalid("cursor", "too deep; narrow the search".into()));
        }
        let limit = req.limit.clamp(1, 100);
        let text = req.q.trim();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if text.is_empty() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        } else {
            if text.chars().count() > 200 {
                return Err(invalid("q", "at most 200 characters".into()));
            }
            // Lenient parsing: the user's text is never a syntax error.
            let (q, _errors) = self.parser.parse_query_lenient(text);
            clauses.push((Occur::Must, q));
        }
        for (dim, value) in &req.filters {
            if !FACETS.iter().any(|(d, _)| d == dim) {
                return Err(invalid(
                    "filter",
                    format!("'{dim}' is not a facet ({})", FACETS.iter().map(|(d, _)| *d).collect::<Vec<_>>().join(", ")),
                ));
            }
            // A value the facet cannot hold is refused, naming the parameter, instead of matching nothing.
            let well_formed = match dim.as_str() {
                "class" => is_classification_code(value),
                "provider" => !value.is_empty() && value.len() <= 18 && value.bytes().all(|b| b.is_ascii_digit()),
                "region" => matches!(value.len(), 2 | 4 | 6) && shutong_reference::RegionCode::parse(&format!("{value:0<6}")).is_ok(),
                "sharing" => SharingType::parse(value).is_some(),
                "open" => matches!(value.as_str(), "true" | "false"),
                "format" => crate::model::ResourceFormat::parse(value).is_some(),
                "cycle" => crate::model::UpdateCycle::parse(value).is_some(),
                _ => !value.is_empty() && value.len() <= 64 && !value.contains(['/', '\\']),
            };
            if !well_formed {
                return Err(invalid(dim, format!("'{value}' is not a value of {dim}")));
            }
            let facet = if dim == "class" { class_facet(value) } else { Facet::from(format!("/{dim}/{value}").as_str()) };
            clauses.push((Occur::Must, Box::new(TermQuery::new(Term::from_facet(self.fields.facets, &facet), IndexRecordOption::Basic))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let mut facets = FacetCollector::for_field("facets");
        for (dim, _) in FACETS {
            facets.add_facet(format!("/{dim}").as_str());
        }
        // 项 counts come from a facet of their own (a collector cannot count a path and its descendants).
        facets.add_facet("/subclass");
        let f = &self.fields;
        let (total, hits, facet_counts) = if text.is_empty() {
            let top = TopDocs::with_limit(limit).and_offset(offset).order_by_fast_field::<i64>("published_at", tantivy::Order::Desc);
            let (total, docs, counts) = searcher.search(&query, &(Count, top, facets)).map_err(index_err)?;
            let hits = docs.into_iter().map(|(_, addr)| (0.0f32, addr)).collect::<Vec<_>>();
            (total, hits, counts)
        } else {
            let top = TopDocs::with_limit(limit).and_offset(offset).order_by_score();
            searcher.search(&query, &(Count, top, facets)).map_err(index_err)?
        };
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let d: TantivyDocument = searcher.doc(addr).map_err(index_err)?;
            let get = |field: Field| d.get_first(field).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let summary = get(f.summary);
            out.push(SearchHit {
                code: get(f.code),
                name: get(f.name),
                summary: if summary.chars().count() > 120 { summary.chars().take(120).collect::<String>() + "…" } else { summary },
                provider_name: get(f.provider_name),
                sharing_type: get(f.sharing_type),
                classification_code: get(f.classification),
                score,
            });
        }
        let mut facet_map = BTreeMap::new();
        for (dim, _) in FACETS {
            let prefix = format!("/{dim}");
            let mut values: Vec<FacetCount> = if *dim == "class" {
                // Top two levels: 类 and 项.
                let mut v: Vec<FacetCount> = Vec::new();
                for p in [prefix.as_str(), "/subclass"] {
                    for (facet, count) in facet_counts.get(p) {
                        let value = facet.to_path().last().map(|s| s.to_string()).unwrap_or_default();
                        v.push(FacetCount { label: value.clone(), value, count });
                    }
                }
                v
            } else {
                facet_counts
                    .get(&prefix)
                    .map(|(facet, count)| {
                        let value = facet.to_path().last().map(|s| s.to_string()).unwrap_or_default();
                        FacetCount { label: facet_label(dim, &value), value, count }
                    })
                    .collect()
            };
            values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
            facet_map.insert(dim.to_string(), values);
        }
        let next_cursor = (offset + out.len() < total && !out.is_empty()).then(|| (offset + out.len()).to_string());
        Ok(SearchResults { total, hits: out, facets: facet_map, next_cursor })
    }
}

/// The facet of a classification code with its ancestors: `101001` → `/class/1/101/101001`.
fn class_facet(code: &str) -> Facet {
    let mut path = String::from("/class");
    for (i, _) in code.char_indices() {
        if matches!(i + 1, 1 | 3 | 6) || i + 1 == code.len() {
            path.push('/');
            path.push_str(&code[..i + 1]);
        }
    }
    Facet::from(path.as_str())
}

/// A label for a facet value, for display.
pub fn facet_label(dim: &str, value: &str) -> String {
    use crate::model::{ResourceFormat, UpdateCycle};
    match dim {
        "sharing" => SharingType::parse(value).map(|t| t.label_zh().to_string()),
        "format" => ResourceFormat::parse(value).map(|t| t.label_zh().to_string()),
        "cycle" => UpdateCycle::parse(value).map(|t| t.label_zh().to_string()),
        "open" => Some(if value == "true" { "是".into() } else { "否".into() }),
        _ => None,
    }
    .unwrap_or_else(|| value.to_string())
}
