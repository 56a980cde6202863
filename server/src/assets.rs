//! Static files of the web panel: the WASM bundle, its JS glue, the stylesheet and `public/`.
//!
//! Release binaries carry them inside (see `build.rs`). Without embedded files, or when
//! `LEPTOS_SITE_ROOT` is set (as `cargo leptos watch` does), they are read from disk.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/site_assets.rs"));
}

pub struct Assets {
    embedded: &'static [(&'static str, &'static [u8])],
    dir: Option<PathBuf>,
}

impl Assets {
    /// Embedded files unless `LEPTOS_SITE_ROOT` asks for a directory; with neither, the
    /// `site` directory next to the executable's `target` folder layout, or `target/site`.
    pub fn discover() -> Self {
        if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
            return Assets {
                embedded: &[],
                dir: Some(PathBuf::from(root)),
            };
        }
        if !embedded::EMBEDDED.is_empty() {
            return Assets {
                embedded: embedded::EMBEDDED,
                dir: None,
            };
        }
        let beside_exe = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().and_then(Path::parent).map(|p| p.join("site")));
        let dir = beside_exe
            .filter(|d| d.is_dir())
            .or_else(|| Some(PathBuf::from("target/site")));
        Assets { embedded: &[], dir }
    }

    /// Where the files come from, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.dir {
            Some(d) => format!("directory {}", d.display()),
            None => format!("{} files embedded in the binary", self.embedded.len()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.embedded.is_empty() && self.dir.as_ref().is_none_or(|d| !d.is_dir())
    }

    fn lookup(&self, rel: &str) -> Option<Cow<'static, [u8]>> {
        if let Some((_, bytes)) = self.embedded.iter().find(|(p, _)| *p == rel) {
            return Some(Cow::Borrowed(*bytes));
        }
        let dir = self.dir.as_ref()?;
        let rel_path = Path::new(rel);
        // Only plain names below the site root: no `..`, no absolute paths.
        if !rel_path
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let path = dir.join(rel_path);
        if !path.is_file() {
            return None;
        }
        std::fs::read(path).ok().map(Cow::Owned)
    }

    /// The response for `path` when it names a static file.
    pub fn response(&self, path: &str) -> Option<Response> {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return None;
        }
        let bytes = self.lookup(rel)?;
        let mime = mime_guess::from_path(rel).first_or_octet_stream();
        let mut resp = (StatusCode::OK, Body::from(bytes)).into_response();
        if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        // File names are not content-hashed, so browsers must revalidate.
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Some(resp)
    }
}
