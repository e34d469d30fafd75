//! How a model's directory is named to callers. A session's result names where its
//! model is; an absolute server path (`/var/lib/hostbridge/models/...`) tells a remote
//! caller about the host's file system and is useless to it anyway, so by default the
//! path is given relative to the model store's parent, in KTRDR's form
//! (`models/rsi_macd_mlp/1d_v3`). An operator whose callers share the file system (and
//! want to open the files) asks for absolute paths (`EXPOSE_MODEL_PATHS=true`).

use std::path::{Component, Path, PathBuf};

/// How model paths appear in results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathStyle {
    /// `{store directory name}/{strategy}/{label}_v{N}`: nothing above the store.
    #[default]
    Relative,
    /// The path on this host, as the store wrote it.
    Absolute,
}

/// `path` (a model directory inside `models_dir`) as `style` shows it.
pub fn shown_path(models_dir: &Path, path: &Path, style: PathStyle) -> String {
    if style == PathStyle::Absolute {
        return std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
    }
    let store = models_dir
        .components()
        .rev()
        .find_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            _ => None,
        })
        .unwrap_or_else(|| PathBuf::from("models"));
    match path.strip_prefix(models_dir) {
        Ok(inside) => store.join(inside).display().to_string(),
        // Not inside the store (never written so): its last two parts, still no root.
        Err(_) => path
            .components()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<PathBuf>()
            .display()
            .to_string(),
    }
}

/// Where a shown path is on this host, for code that holds `models_dir` (tests, a
/// predictor beside the service).
pub fn resolve_shown(models_dir: &Path, shown: &str) -> PathBuf {
    let shown = Path::new(shown);
    if shown.is_absolute() {
        return shown.to_path_buf();
    }
    let mut parts = shown.components();
    parts.next(); // the store directory's own name
    models_dir.join(parts.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_name_the_model_from_the_store_down_unless_absolute_is_asked() {
        let store = Path::new("/var/lib/hostbridge/models");
        let model = store.join("rsi_macd_mlp/1d_v3");
        assert_eq!(
            shown_path(store, &model, PathStyle::Relative),
            "models/rsi_macd_mlp/1d_v3"
        );
        assert_eq!(
            shown_path(store, &model, PathStyle::Absolute),
            "/var/lib/hostbridge/models/rsi_macd_mlp/1d_v3"
        );
        assert_eq!(resolve_shown(store, "models/rsi_macd_mlp/1d_v3"), model);
        // A relative store (the default `models`) reads the same.
        let relative = Path::new("models");
        assert_eq!(
            shown_path(relative, &relative.join("s/1h_v1"), PathStyle::Relative),
            "models/s/1h_v1"
        );
        // A store at `./` or `/` still gives no root.
        let odd = shown_path(Path::new("/"), Path::new("/s/1h_v1"), PathStyle::Relative);
        assert!(!odd.starts_with('/'), "{odd}");
    }
}
