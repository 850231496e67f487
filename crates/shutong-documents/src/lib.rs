#![doc = include_str!("../README.md")]

mod fonts;
mod world;

use typst::diag::{Severity, SourceDiagnostic};
use typst::foundations::Bytes;
use typst::layout::PagedDocument;
use typst::syntax::Source;

pub use fonts::Fonts;

use world::DocumentWorld;

/// What can go wrong when finding fonts or rendering a document.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// No font in the searched directories has Chinese glyphs: documents would print empty boxes.
    #[error(
        "no font with Chinese glyphs (中) in {}: install a CJK font, e.g. the Debian package \
         fonts-wqy-zenhei or fonts-noto-cjk",
        display_dirs(searched)
    )]
    NoCjkFont {
        /// The directories that were searched, as given.
        searched: Vec<std::path::PathBuf>,
    },
    /// The template did not compile with the data given: the diagnostics' messages, with their lines.
    #[error("document template: {0}")]
    Template(String),
    /// The compiled document could not be written as PDF.
    #[error("PDF export: {0}")]
    Pdf(String),
    /// The data could not be serialised as JSON.
    #[error("document data: {0}")]
    Data(#[from] serde_json::Error),
}

fn display_dirs(dirs: &[std::path::PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directory".to_owned();
    }
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Renders the typst source `template` as a PDF, with `data` readable by the template as
/// `json("/data.json")`.
///
/// The template sees nothing else (see the crate doc). Compilation is deterministic for the same template,
/// data and fonts; typst's warnings are logged, its errors returned as [`DocumentError::Template`].
///
/// It is CPU-bound and blocking (about 0.7 s for three pages in a debug build): from async code, call it in
/// `tokio::task::spawn_blocking`.
pub fn render_pdf(fonts: &Fonts, template: &str, data: &serde_json::Value) -> Result<Vec<u8>, DocumentError> {
    let data = Bytes::new(serde_json::to_vec(data)?);
    let world = DocumentWorld::new(fonts, template, data);
    let warned = typst::compile::<PagedDocument>(&world);
    for warning in &warned.warnings {
        tracing::warn!(warning = %describe(world.main_source(), warning), "document template");
    }
    let result = match warned.output {
        Ok(document) => typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default())
            .map_err(|errors| DocumentError::Pdf(describe_all(world.main_source(), &errors))),
        Err(errors) => Err(DocumentError::Template(describe_all(world.main_source(), &errors))),
    };
    // typst memoises across compilations in a process-wide cache; without eviction a long-running server
    // would keep every document's intermediate results. Entries unused for the last few renders go.
    typst::comemo::evict(4);
    result
}

fn describe_all(main: &Source, diagnostics: &[SourceDiagnostic]) -> String {
    let errors: Vec<String> = diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| describe(main, d)).collect();
    if errors.is_empty() { "failed without a message".to_owned() } else { errors.join("; ") }
}

/// One diagnostic as `line N: message (hint: ..)`, the line counted in the template.
fn describe(main: &Source, diagnostic: &SourceDiagnostic) -> String {
    let mut text = String::new();
    let line = (diagnostic.span.id() == Some(main.id()))
        .then(|| main.range(diagnostic.span))
        .flatten()
        .and_then(|range| main.lines().byte_to_line(range.start));
    if let Some(line) = line {
        text.push_str(&format!("line {}: ", line + 1));
    }
    text.push_str(&diagnostic.message);
    for hint in &diagnostic.hints {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}

#[cfg(test)]
mod tests;
