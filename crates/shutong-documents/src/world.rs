//! The world one template is compiled in: the template, its data, the fonts, and nothing else.

use std::sync::LazyLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, Source, VirtualPath};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, World};

use crate::Fonts;
use crate::fonts::FontsInner;

/// The template's own path (in error messages and for relative paths in it).
static MAIN_ID: LazyLock<FileId> = LazyLock::new(|| FileId::new(None, VirtualPath::new("/main.typ")));
/// The one file a template can read: the render's data as JSON.
static DATA_ID: LazyLock<FileId> = LazyLock::new(|| FileId::new(None, VirtualPath::new("/data.json")));

pub(crate) struct DocumentWorld<'a> {
    fonts: &'a FontsInner,
    main: Source,
    data: Bytes,
}

impl<'a> DocumentWorld<'a> {
    pub(crate) fn new(fonts: &'a Fonts, template: &str, data: Bytes) -> Self {
        DocumentWorld { fonts: &fonts.inner, main: Source::new(*MAIN_ID, template.to_owned()), data }
    }

    pub(crate) fn main_source(&self) -> &Source {
        &self.main
    }
}

impl World for DocumentWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.fonts.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.fonts.book
    }

    fn main(&self) -> FileId {
        *MAIN_ID
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == *MAIN_ID { Ok(self.main.clone()) } else { Err(not_found(id)) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == *DATA_ID { Ok(self.data.clone()) } else { Err(not_found(id)) }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.font(index)
    }

    /// No clock: a document's date is part of its data, so the same data prints the same document.
    fn today(&self, _offset: Option<i64>) -> Option<Datetime> {
        None
    }
}

/// Every other path, and every package (`@preview/..`), is absent: templates read no files and fetch nothing.
fn not_found(id: FileId) -> FileError {
    FileError::NotFound(id.vpath().as_rootless_path().to_path_buf())
}
