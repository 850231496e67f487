//! Finding the machine's fonts and loading them when a document first uses them.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use typst::foundations::Bytes;
use typst::text::{Font, FontBook, FontFamily, FontInfo, FontList, Lang, Region, TextElem};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt};

use crate::DocumentError;

/// The character a font must have for Chinese documents.
const CJK_PROBE: char = '中';

/// CJK families preferred as the text's default, best first: a serif (宋体-like) face suits official
/// documents. Any other family with Chinese glyphs comes after these.
const PREFERRED_CJK_FAMILIES: &[&str] =
    &["Noto Serif CJK SC", "Source Han Serif SC", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei"];

/// The fonts found on the machine, with the typst standard library set up to use them.
///
/// Discovered once ([`Fonts::discover`]) and shared: cloning is cheap (an `Arc`), and every render with
/// the same `Fonts` reuses the faces already loaded.
#[derive(Clone)]
pub struct Fonts {
    pub(crate) inner: Arc<FontsInner>,
}

pub(crate) struct FontsInner {
    pub(crate) book: LazyHash<FontBook>,
    pub(crate) library: LazyHash<Library>,
    /// One per face, in the book's order (CJK-capable faces first).
    faces: Vec<FaceSlot>,
    /// The font files, each read on the first use of one of its faces.
    files: Vec<FontFile>,
    cjk_family: String,
}

struct FaceSlot {
    file: usize,
    index: u32,
    font: OnceLock<Option<Font>>,
}

struct FontFile {
    path: PathBuf,
    bytes: OnceLock<Option<Bytes>>,
}

impl Fonts {
    /// The directories searched by default: Debian's system and local font directories.
    pub fn default_dirs() -> Vec<PathBuf> {
        vec![PathBuf::from("/usr/share/fonts"), PathBuf::from("/usr/local/share/fonts")]
    }

    /// Finds every font (`.ttf`, `.otf`, `.ttc`, `.otc`) under `dirs`, recursively.
    ///
    /// A directory that does not exist is skipped, as is a file that cannot be read or parsed (logged).
    /// Fails with [`DocumentError::NoCjkFont`] if no face has Chinese glyphs.
    pub fn discover(dirs: &[PathBuf]) -> Result<Fonts, DocumentError> {
        let mut paths = Vec::new();
        let mut seen_dirs = HashSet::new();
        for dir in dirs {
            collect_font_files(dir, &mut seen_dirs, &mut paths);
        }
        paths.sort();
        paths.dedup();

        // Read each file once to index its faces; the bytes are dropped again (a CJK collection is tens
        // of megabytes) and read back only when a document uses one of its faces.
        let mut found: Vec<(usize, u32, FontInfo)> = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            let data = match std::fs::read(&path) {
                Ok(data) => data,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read a font file; skipped");
                    continue;
                }
            };
            let before = found.len();
            for (index, info) in FontInfo::iter(&data).enumerate() {
                let Ok(index) = u32::try_from(index) else { break };
                found.push((files.len(), index, info));
            }
            if found.len() == before {
                tracing::debug!(path = %path.display(), "not a font typst can use; skipped");
                continue;
            }
            files.push(FontFile { path, bytes: OnceLock::new() });
        }

        // CJK-capable faces first: typst's last-resort fallback takes the first of equally good faces.
        found.sort_by_key(|(_, _, info)| !info.coverage.contains(u32::from(CJK_PROBE)));
        let cjk_family = choose_cjk_family(&found).ok_or_else(|| DocumentError::NoCjkFont { searched: dirs.to_vec() })?.to_owned();

        let book = FontBook::from_infos(found.iter().map(|(_, _, info)| info.clone()));
        let faces = found.into_iter().map(|(file, index, _)| FaceSlot { file, index, font: OnceLock::new() }).collect();
        let library = chinese_library(&cjk_family);
        tracing::info!(files = files.len(), cjk_family = %cjk_family, "fonts for documents found");
        Ok(Fonts { inner: Arc::new(FontsInner { book: LazyHash::new(book), library: LazyHash::new(library), faces, files, cjk_family }) })
    }

    /// The CJK family documents are set in unless their template says otherwise.
    pub fn cjk_family(&self) -> &str {
        &self.inner.cjk_family
    }

    /// How many font faces were found.
    pub fn face_count(&self) -> usize {
        self.inner.faces.len()
    }
}

impl fmt::Debug for Fonts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fonts")
            .field("faces", &self.inner.faces.len())
            .field("files", &self.inner.files.len())
            .field("cjk_family", &self.inner.cjk_family)
            .finish()
    }
}

impl FontsInner {
    /// The face at `index` in the book, loaded (and kept) on first use.
    pub(crate) fn font(&self, index: usize) -> Option<Font> {
        let slot = self.faces.get(index)?;
        slot.font
            .get_or_init(|| {
                let file = self.files.get(slot.file)?;
                let bytes = file
                    .bytes
                    .get_or_init(|| match std::fs::read(&file.path) {
                        Ok(data) => Some(Bytes::new(data)),
                        Err(e) => {
                            tracing::warn!(path = %file.path.display(), error = %e, "cannot read a font file");
                            None
                        }
                    })
                    .clone()?;
                // The file may have changed since discovery (a package upgrade): then the face is missing,
                // which typst handles like any missing font.
                Font::new(bytes, slot.index)
            })
            .clone()
    }
}

/// Pushes the font files under `dir` onto `out`, following symbolic links but entering each directory once.
fn collect_font_files(dir: &Path, seen_dirs: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(canonical) = dir.canonicalize() else { return };
    if !seen_dirs.insert(canonical) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot list a font directory; skipped");
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // `metadata` follows links: a link to a directory is walked, a link to a font file is read.
        let Ok(metadata) = std::fs::metadata(&path) else { continue };
        if metadata.is_dir() {
            collect_font_files(&path, seen_dirs, out);
        } else if metadata.is_file() && is_font_file(&path) {
            out.push(path);
        }
    }
}

fn is_font_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["ttf", "otf", "ttc", "otc"].iter().any(|known| e.eq_ignore_ascii_case(known)))
}

/// The preferred family among the faces with Chinese glyphs, else the first such family by name.
fn choose_cjk_family(faces: &[(usize, u32, FontInfo)]) -> Option<&str> {
    let cjk: Vec<&str> =
        faces.iter().filter(|(_, _, info)| info.coverage.contains(u32::from(CJK_PROBE))).map(|(_, _, info)| info.family.as_str()).collect();
    PREFERRED_CJK_FAMILIES
        .iter()
        .find_map(|preferred| cjk.iter().copied().find(|family| family.eq_ignore_ascii_case(preferred)))
        .or_else(|| cjk.iter().copied().min())
}

/// The standard library with Chinese text as the default: `#set text(font: cjk_family, lang: "zh",
/// region: "cn")` before any template's own rules.
fn chinese_library(cjk_family: &str) -> Library {
    let mut library = Library::default();
    library.styles.set(TextElem::font, FontList(vec![FontFamily::new(cjk_family)]));
    library.styles.set(TextElem::lang, Lang::CHINESE);
    library.styles.set(TextElem::region, "cn".parse::<Region>().ok());
    library
}
